"""One running stack per database and per data directory (app/stack/locks.py): two stacks given
one SQLite database by `.env`, each with its own Prefect server, failed each other's runs."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.stack import advisory_lock, locks
from tests.support.postgres import create_database, own_cluster

HOLDER = (
    "import sys, time\n"
    "from app.stack import locks\n"
    "locks.claim({'DATABASE_URL': sys.argv[1], 'PIPELINE_DATA_DIR': sys.argv[2]})\n"
    "print('held', flush=True)\n"
    "time.sleep(60)\n"
)


def _env(tmp_path: Path, database: str, data: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / database}",
        "PIPELINE_DATA_DIR": str(tmp_path / data),
    }


def test_a_second_stack_on_the_same_database_is_refused_until_the_first_is_gone(
    tmp_path: Path,
) -> None:
    first = _env(tmp_path, "shared.db", "data-1")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, first["DATABASE_URL"], first["PIPELINE_DATA_DIR"]],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        before = sorted(tmp_path.rglob("*"))
        with pytest.raises(RuntimeError) as refused:
            # a new state directory's data directory: it was left holding only its lock file
            locks.claim(_env(tmp_path, "shared.db", "new-state/data-2"))
        assert sorted(tmp_path.rglob("*")) == before  # nothing made is left
        assert str(refused.value) == (
            f"another running stack uses DATABASE_URL (sqlite+aiosqlite:///{tmp_path}/shared.db): "
            "two stacks on one database or data directory, each with its own Prefect server, fail "
            "each other's runs; stop that stack, or give this one its own DATABASE_URL (set in "
            "the environment or .env, it wins over STATE_DIR)"
        )
        with pytest.raises(RuntimeError, match=r"uses PIPELINE_DATA_DIR \(.*/data-1\)"):
            locks.claim(_env(tmp_path, "other.db", "data-1"))
        assert sorted(tmp_path.rglob("*")) == before  # the lock it found is kept: not its own
        held = locks.claim(_env(tmp_path, "other.db", "data-2"))  # nothing shared
        locks.release(held)
    finally:
        holder.kill()
        holder.wait()
    held = locks.claim(_env(tmp_path, "shared.db", "data-2"))  # its lock went with it
    locks.release(held)
    assert not held


def test_a_second_stack_on_the_same_postgresql_database_is_refused_until_the_first_is_gone(
    tmp_path: Path, pg_base_url: str
) -> None:
    """Two stacks given one PostgreSQL database, each with its own Prefect server, failed each
    other's runs as on SQLite; the database may be another machine's, out of a flock's reach."""
    shared = create_database(pg_base_url, "stack_lock_shared")
    # as a user writes it: plain postgresql://, which Settings gives the async driver (it failed:
    # "No module named 'psycopg2'"), and a password
    password = shared.replace("postgresql+asyncpg://postgres@", "postgresql://postgres:pw@")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, shared, str(tmp_path / "data-1")],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RuntimeError) as refused:
            locks.claim({"DATABASE_URL": password, "PIPELINE_DATA_DIR": str(tmp_path / "d2")})
        shown = shared.replace("postgres@", "postgres:***@")
        assert str(refused.value) == (
            f"another running stack uses DATABASE_URL ({shown}, data-pipeline stack (process "
            f"{holder.pid} on {socket.gethostname()})): two stacks on one database or data "
            "directory, each with its own Prefect server, fail each other's runs; stop that "
            "stack, or give this one its own DATABASE_URL (set in the environment or .env, it "
            "wins over STATE_DIR)"
        )
        other = create_database(pg_base_url, "stack_lock_other")  # same server, other database
        held = locks.claim({"DATABASE_URL": other, "PIPELINE_DATA_DIR": str(tmp_path / "3")})
        locks.release(held)
    finally:
        holder.kill()  # SIGKILL: its connection ends, and the server drops its lock
        holder.wait()
    held = locks.claim({"DATABASE_URL": shared, "PIPELINE_DATA_DIR": str(tmp_path / "d2")})
    assert len(held.databases) == 1
    locks.release(held)
    assert not held


def test_an_unreachable_postgresql_database_is_named_without_its_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://u:secret@127.0.0.1:9/p"
    with pytest.raises(RuntimeError) as refused:
        locks.claim({"DATABASE_URL": url, "PIPELINE_DATA_DIR": str(tmp_path)})
    assert str(refused.value).startswith(
        "cannot lock DATABASE_URL (postgresql+asyncpg://u:***@127.0.0.1:9/p) for this stack: "
    )
    assert "secret" not in str(refused.value)


def test_a_postgresql_database_has_no_lock_file(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql+asyncpg://u@db/p", "PIPELINE_DATA_DIR": str(tmp_path)}
    assert list(locks.shared_paths(env)) == ["PIPELINE_DATA_DIR"]


def test_a_lock_lost_to_a_server_restart_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The server drops a session's lock when it restarts: a second stack's claim then went
    through while the first ran on, and nothing said so. The first takes it again on a new
    connection as soon as the server answers, and says so; the second is refused again."""
    monkeypatch.setattr(advisory_lock, "KEEP_SECONDS", 0.2)
    with own_cluster() as cluster:
        url = create_database(cluster.url, "stack_lock_restart")
        first = locks.claim({"DATABASE_URL": url, "PIPELINE_DATA_DIR": str(tmp_path / "1")})
        try:
            cluster.stop()
            cluster.start()
            deadline = time.monotonic() + 30
            said = ""
            while "held again" not in said and time.monotonic() < deadline:
                time.sleep(0.1)
                said += capfd.readouterr().err
            assert said.splitlines()[-1] == "stack: the lock on DATABASE_URL is held again", said
            assert said.startswith("stack: the lock on DATABASE_URL was lost ("), said
            with pytest.raises(RuntimeError, match=r"^another running stack uses DATABASE_URL"):
                locks.claim({"DATABASE_URL": url, "PIPELINE_DATA_DIR": str(tmp_path / "2")})
        finally:
            locks.release(first)
