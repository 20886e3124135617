"""Every migration goes down and up again without losing a row, on SQLite and PostgreSQL.

On SQLite, Alembic drops a column by rebuilding the table (copy, drop, rename): with the app's
`PRAGMA foreign_keys=ON`, dropping `pipelines` once cascaded to every run and stage."""

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.config import PROJECT_ROOT
from app.db import create_engine
from app.models import Base
from tests.conftest import new_database_url

COUNTS = (
    "SELECT (SELECT count(*) FROM pipelines), (SELECT count(*) FROM pipeline_runs), "
    "(SELECT count(*) FROM pipeline_stages)"
)


def _alembic(url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_migrations_build_the_schema_the_models_describe(
    backend: str, request: pytest.FixtureRequest, tmp_root: Path
) -> None:
    if backend == "postgresql":
        request.getfixturevalue("pg_base_url")
    url = await asyncio.to_thread(new_database_url, backend, request, tmp_root)  # at head
    engine = create_engine(url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    await engine.dispose()
    assert differences == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_every_migration_goes_down_and_up_keeping_the_rows(
    backend: str, request: pytest.FixtureRequest, tmp_root: Path
) -> None:
    if backend == "postgresql":
        request.getfixturevalue("pg_base_url")  # the session's cluster, started here if need be
    url = await asyncio.to_thread(new_database_url, backend, request, tmp_root)  # at head
    engine = create_engine(url)
    async with engine.begin() as connection:
        for statement in (
            "INSERT INTO pipelines (id, name, record_count, created_at) "
            "VALUES (1, 'kept', 10, CURRENT_TIMESTAMP)",
            "INSERT INTO pipeline_runs (id, pipeline_id, status, record_count, created_at) "
            "VALUES (1, 1, 'completed', 10, CURRENT_TIMESTAMP)",
            "INSERT INTO pipeline_stages (run_id, name, position, status, attempts) "
            "VALUES (1, 'generate', 0, 'completed', 1)",
        ):
            await connection.execute(text(statement))
    await engine.dispose()
    for number, (command, step) in enumerate(
        (("downgrade", "-1"), ("downgrade", "-1"), ("upgrade", "head"))
    ):
        await asyncio.to_thread(_alembic, url, command, step)
        async with engine.connect() as connection:
            counts = (await connection.execute(text(COUNTS))).one()
            if backend == "sqlite" and number == 0:  # the table rebuilt without a column
                schema = "SELECT sql FROM sqlite_master WHERE name = 'pipelines'"
                assert "AUTOINCREMENT" in (await connection.execute(text(schema))).scalar_one()
        await engine.dispose()
        assert tuple(counts) == (1, 1, 1), f"after {command} {step}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_deleted_rows_id_is_never_handed_out_again(
    backend: str, request: pytest.FixtureRequest, tmp_root: Path
) -> None:
    """A run's id keys its flow run in Prefect, which keeps a deleted pipeline's flow runs."""
    if backend == "postgresql":
        request.getfixturevalue("pg_base_url")
    url = await asyncio.to_thread(new_database_url, backend, request, tmp_root)
    engine = create_engine(url)
    ids = []
    for _ in range(2):
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO pipelines (name, record_count, created_at) "
                    "VALUES ('p', 1, CURRENT_TIMESTAMP)"
                )
            )
            ids.append((await connection.execute(text("SELECT max(id) FROM pipelines"))).scalar())
            await connection.execute(text("DELETE FROM pipelines"))
    await engine.dispose()
    assert ids == [1, 2]


ORPHAN = (
    "INSERT INTO pipelines (id, name, record_count, created_at) "
    "VALUES (1, 'gone', 1, '2026-01-01')",
    "INSERT INTO pipeline_runs (id, pipeline_id, status, record_count, created_at) "
    "VALUES (1, 1, 'completed', 1, '2026-01-01')",
)


def _sqlite_at_head(tmp_root: Path, name: str) -> Path:
    path = tmp_root / f"{name}.db"
    _alembic(f"sqlite+aiosqlite:///{path}", "upgrade", "head")
    with sqlite3.connect(path) as connection:  # foreign keys off, as in the sqlite3 shell
        for statement in ORPHAN:
            connection.execute(statement)
    return path


def test_a_run_orphaned_before_the_migration_is_named_not_a_failure(tmp_root: Path) -> None:
    """A run whose pipeline was deleted with foreign keys off (the sqlite3 shell's default) made
    every alembic command fail, and with it every `make up`."""
    path = _sqlite_at_head(tmp_root, "orphaned")
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM pipelines")
        connection.execute(  # a stage of a run that is gone too
            "INSERT INTO pipeline_stages (run_id, name, position, status, attempts) "
            "VALUES (7, 'generate', 0, 'completed', 1)"
        )
    url = f"sqlite+aiosqlite:///{path}"
    warning = (
        "warning: 2 row(s) of pipeline_runs, pipeline_stages have no parent row (deleted with "
        "foreign keys off, as the sqlite3 shell does); delete them with: DELETE FROM "
        "pipeline_runs WHERE pipeline_id NOT IN (SELECT id FROM pipelines); DELETE FROM "
        "pipeline_stages WHERE run_id NOT IN (SELECT id FROM pipeline_runs)\n"
    )
    for command, step in (("downgrade", "-1"), ("upgrade", "head")):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", command, step],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
        )
        assert (done.returncode, done.stderr) == (0, warning), command


def test_a_step_that_orphans_a_run_is_undone_with_its_revision(tmp_root: Path) -> None:
    """The check ran after Alembic had committed each step: a migration that failed it was left
    applied, its revision recorded."""
    scripts = tmp_root / "bad-migrations"
    shutil.copytree(PROJECT_ROOT / "migrations", scripts / "migrations")
    shutil.copy(PROJECT_ROOT / "alembic.ini", scripts)
    head = ScriptDirectory.from_config(Config(PROJECT_ROOT / "alembic.ini")).get_current_head()
    (scripts / "migrations" / "versions" / "2099_01_01_0000-badbadbadbad_orphans.py").write_text(
        'revision = "badbadbadbad"\n'
        f"down_revision = {head!r}\n"
        "from alembic import op\n"
        "def upgrade():\n"
        '    op.execute("CREATE TABLE scratch (x INTEGER)")\n'
        '    op.execute("DELETE FROM pipelines")\n'
        "def downgrade():\n"
        "    pass\n"
    )
    path = _sqlite_at_head(tmp_root, "undone")
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=scripts,
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{path}",
            "PYTHONPATH": str(PROJECT_ROOT),
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "RuntimeError: the migration left rows whose parent is gone, undone: "
        "[('pipeline_runs', 1, 'pipelines', 0)]"
    )
    with sqlite3.connect(path) as connection:
        version = "SELECT version_num FROM alembic_version"
        assert connection.execute(version).fetchall() == [(head,)]
        assert connection.execute("SELECT count(*) FROM pipelines").fetchone() == (1,)
        scratch = "SELECT count(*) FROM sqlite_master WHERE name = 'scratch'"
        assert connection.execute(scratch).fetchone() == (0,)
