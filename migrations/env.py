"""Alembic environment: migrates the database named by DATABASE_URL (or the -x url=… override)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app import models  # noqa: F401  (registers the tables on Base.metadata)
from app.config import get_settings
from app.db import Base, create_engine

target_metadata = Base.metadata


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_url


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Alembic changes a SQLite table by rebuilding it (copy, drop, rename): with the app's
        # foreign_keys=ON, dropping `pipelines` would cascade to every run and stage. The pragma
        # only takes effect outside a transaction, hence the commit.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=sqlite
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite and (dangling := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
        raise RuntimeError(f"the migration left rows whose parent is gone: {dangling[:5]}")


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
