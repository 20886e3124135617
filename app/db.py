"""The database: engine, session factory and declarative base — the one owner of connections."""

from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app import observability
from app.config import get_settings


class Base(DeclarativeBase):
    """Base of the service's tables."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL and a busy timeout let the API and many flow-run processes share one SQLite file."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite gets its parent directory and concurrency pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine() -> AsyncEngine:
    """The process-wide engine for the configured DATABASE_URL (traced when Datadog is on)."""
    return observability.traced_engine(create_engine(get_settings().database_url))


@lru_cache
def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    """The process-wide session factory."""
    return async_sessionmaker(get_engine(), expire_on_commit=False)


async def lock_for_write(session: AsyncSession) -> None:
    """On SQLite, begin the session's transaction holding the database's write lock.

    SQLite ignores SELECT … FOR UPDATE and its driver begins a transaction only at the first
    write, so two writers could both read a run as running and both write their final status.
    On PostgreSQL the FOR UPDATE of the read that follows locks the row.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("BEGIN IMMEDIATE"))


async def get_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request."""
    async with get_sessionmaker()() as session:
        yield session
