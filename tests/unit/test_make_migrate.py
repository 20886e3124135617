"""`make doctor STATE_DIR=…` prints a fix for a stack whose database does not exist yet; the fix
works as printed, and `make migrate STATE_DIR=…` migrates that stack's database, not var's."""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from tests.support.postgres import free_port

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
# run by `make test`, make is make's child: its flags (-w: "Leaving directory") are not ours
OUTER = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
# what a shell without the suite's settings has: the stack's defaults apply (PREFECT_HOME too)
UNSET = (*OUTER, "DATABASE_URL", "PREFECT_HOME", "PIPELINE_DATA_DIR")


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """make, without its `install` (the suite's environment is installed already)."""
    base = {name: value for name, value in os.environ.items() if name not in UNSET}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", "install", *args],
        env={**base, **(env or {})},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _revision(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_make_migrate_passes_the_state_directory() -> None:
    dry_run = _make("-n", "migrate", "STATE_DIR=var-2", "PREFECT_PORT=4201")
    assert dry_run.stdout.splitlines()[-1] == (
        ".venv/bin/python -m app.stack.migrate --prefect-port=4201 --state-dir='var-2'"
    )


def test_the_fix_doctor_prints_for_a_new_state_directory_works_as_printed(tmp_path: Path) -> None:
    """It printed `run 'make migrate' (it creates /tmp/x/pipelines.db)`, and make migrate made
    var/pipelines.db; it also printed Prefect's warning that it could not make /tmp/x/prefect."""
    state = tmp_path / "x"
    where = [f"STATE_DIR={state}", f"PREFECT_PORT={free_port()}", f"API_PORT={free_port()}"]
    doctor = _make("doctor", *where)
    assert doctor.returncode == 2, doctor.stdout + doctor.stderr
    # make's own line on the doctor's exit status 1 (a check failed), and nothing else
    assert [line for line in doctor.stderr.splitlines() if not line.startswith("make: ***")] == []
    fix = re.search(r"run `DATABASE_URL=(\S+) make migrate` \(it creates (\S+)\)", doctor.stdout)
    assert fix is not None, doctor.stdout
    assert fix.groups() == (f"sqlite+aiosqlite:///{state}/pipelines.db", f"{state}/pipelines.db")
    assert not state.exists()  # the doctor made nothing

    assert _make("migrate", env={"DATABASE_URL": fix[1]}).returncode == 0  # as printed
    assert sorted(os.listdir(state)) == ["pipelines.db"]
    head = _revision(state / "pipelines.db")
    # a database one migration behind: the fix names this state directory's database too (it
    # said plain `make migrate`, which migrates var's)
    alembic = [sys.executable, "-m", "alembic", "downgrade", "-1"]
    subprocess.run(
        alembic, cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": fix[1]}, check=True
    )
    again = _make("doctor", *where)
    lines = again.stdout.splitlines()
    assert f"ok    database       sqlite+aiosqlite:///{state}/pipelines.db reachable" in lines
    behind = re.search(
        r"run `DATABASE_URL=(\S+) make migrate` \(alembic upgrade head\)", again.stdout
    )
    assert behind is not None and behind[1] == fix[1], again.stdout
    assert _make("migrate", env={"DATABASE_URL": behind[1]}).returncode == 0  # as printed
    assert _revision(state / "pipelines.db") == head

    other = tmp_path / "y"
    assert _make("migrate", f"STATE_DIR={other}").returncode == 0  # the way the reviewer ran it
    assert sorted(os.listdir(other)) == ["pipelines.db"]
