"""Alembic environment: migrates the database named by DATABASE_URL (or the -x url=… override)."""

import asyncio
import sys

from alembic import context
from sqlalchemy.engine import Connection

from app import models  # noqa: F401  (registers the tables on Base.metadata)
from app.config import get_settings
from app.db import Base, create_engine

target_metadata = Base.metadata


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_url


def _run(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Alembic changes a SQLite table by rebuilding it (copy, drop, rename): with the app's
    # foreign_keys=ON, dropping `pipelines` would cascade to every run and stage. The pragma only
    # takes effect outside a transaction, hence the commit.
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    before = set(_dangling(connection))
    # one transaction for every step, checked before it commits: a step that leaves a run without
    # its pipeline is undone with the revision it would have recorded (SQLite's DDL is
    # transactional; Alembic would otherwise commit each step on its own)
    connection.exec_driver_sql("BEGIN")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    if left := [row for row in _dangling(connection) if row not in before]:
        connection.rollback()
        raise RuntimeError(f"the migration left rows whose parent is gone, undone: {left[:5]}")
    connection.commit()
    if before:  # not the migration's doing (a DELETE with foreign keys off): said, not refused
        # each once, parents' orphans first (pipeline_runs before pipeline_stages)
        fixes = "; ".join(dict.fromkeys(_orphan_delete(connection, row) for row in sorted(before)))
        tables = ", ".join(sorted({table for table, _rowid, _parent, _fk in before}))
        print(
            f"warning: {len(before)} row(s) of {tables} have no parent row (deleted with foreign "
            f"keys off, as the sqlite3 shell does); delete them with: {fixes}",
            file=sys.stderr,
        )


def _orphan_delete(connection: Connection, row: tuple[str, int, str, int]) -> str:
    """The DELETE of the rows of `row`'s table whose parent (by that foreign key) is gone."""
    table, _rowid, parent, key = row
    keys = connection.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all()
    _id, _seq, _parent, column, referenced, *_ = next(k for k in keys if k[0] == key)
    return f"DELETE FROM {table} WHERE {column} NOT IN (SELECT {referenced} FROM {parent})"


def _dangling(connection: Connection) -> list[tuple[str, int, str, int]]:
    """SQLite's foreign key check: (table, rowid, parent table, key index) of each orphaned row."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def _run_online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
