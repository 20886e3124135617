"""Every migration goes down and up again without losing a row, on SQLite and PostgreSQL.

On SQLite, Alembic drops a column by rebuilding the table (copy, drop, rename): with the app's
`PRAGMA foreign_keys=ON`, dropping `pipelines` once cascaded to every run and stage."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from app.config import PROJECT_ROOT
from app.db import create_engine
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
