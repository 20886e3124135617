"""One running stack per database and per data directory (app/stack_lock.py): two stacks given
one SQLite database by `.env`, each with its own Prefect server, failed each other's runs."""

import subprocess
import sys
from pathlib import Path

import pytest

from app import stack_lock
from app.config import PROJECT_ROOT

HOLDER = (
    "import sys, time\n"
    "from app import stack_lock\n"
    "stack_lock.claim({'DATABASE_URL': sys.argv[1], 'PIPELINE_DATA_DIR': sys.argv[2]})\n"
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
        with pytest.raises(RuntimeError) as refused:
            stack_lock.claim(_env(tmp_path, "shared.db", "data-2"))
        assert str(refused.value) == (
            f"another running stack uses DATABASE_URL (sqlite+aiosqlite:///{tmp_path}/shared.db): "
            "two stacks on one database or data directory, each with its own Prefect server, fail "
            "each other's runs; stop that stack, or give this one its own DATABASE_URL (set in "
            "the environment or .env, it wins over STATE_DIR)"
        )
        with pytest.raises(RuntimeError, match=r"uses PIPELINE_DATA_DIR \(.*/data-1\)"):
            stack_lock.claim(_env(tmp_path, "other.db", "data-1"))
        held = stack_lock.claim(_env(tmp_path, "other.db", "data-2"))  # nothing shared
        stack_lock.release(held)
    finally:
        holder.kill()
        holder.wait()
    held = stack_lock.claim(_env(tmp_path, "shared.db", "data-2"))  # its lock went with it
    stack_lock.release(held)
    assert held == []


def test_a_postgresql_database_is_not_locked_here(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql+asyncpg://u@db/p", "PIPELINE_DATA_DIR": str(tmp_path)}
    assert list(stack_lock.shared_paths(env)) == ["PIPELINE_DATA_DIR"]
