"""Proof that writers wait for a lock a test holds, before the test lets them go.

A race test holds a row (PostgreSQL) or the file's write lock (SQLite) and starts writers behind
it. `not task.done()` after a sleep proved nothing: a writer that had not started yet was not
done either, and one reaching the database only after the holder committed passed the same test
without the race ever happening. `lock_waits()` watches the app's database instead:

- PostgreSQL: sessions of the database waiting for a lock (`pg_stat_activity.wait_event_type =
  'Lock'`), counted from a connection of its own;
- SQLite: write statements (BEGIN IMMEDIATE, INSERT, UPDATE, DELETE, REPLACE) SQLite has begun to
  run and not yet returned, seen by a trace callback on each connection the app checks out while
  watching. SQLite writes one transaction at a time: a write statement begun while the test
  holds the write lock waits in the busy handler until the holder commits.

Enter it before the holder takes its lock (its connection is watched too), then
`await waits.until_waiting(n, *writers)` once the writers are started.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool
from sqlalchemy.util import await_only

from app.db import get_engine

WITHIN = 10.0  # seconds a started writer has to reach its lock wait
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
LOCK_WAITS = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


class LockWaits:
    """Counts the writers waiting for a lock on the app's database (see the module)."""

    def __init__(self, backend: str, watcher: AsyncEngine | None) -> None:
        self.backend = backend
        self._watcher = watcher  # PostgreSQL: its own connection, outside the app's pool
        self._loop = asyncio.get_running_loop()
        self.watching = True
        # SQLite: the write statement each connection has begun and not yet returned from
        self._in_flight: dict[int, str] = {}

    async def waiting(self) -> int:
        """How many writers wait for a lock now."""
        if self._watcher is not None:
            async with self._watcher.connect() as watcher:
                return int((await watcher.execute(LOCK_WAITS)).scalar_one())
        return len(self._in_flight)

    async def until_waiting(self, writers: int, *tasks: asyncio.Future[Any]) -> None:
        """Return once exactly `writers` writers wait for a lock; fail after WITHIN seconds, or
        as soon as one of `tasks` (the writers) has ended without waiting."""
        deadline = self._loop.time() + WITHIN
        while (count := await self.waiting()) != writers:
            for task in tasks:
                if task.done():
                    ended = "cancelled" if task.cancelled() else task.exception() or task.result()
                    pytest.fail(
                        f"{self.backend}: a writer ended before {writers} waited for the lock "
                        f"({count} did): {ended!r}"
                    )
            if self._loop.time() > deadline:
                pytest.fail(
                    f"{self.backend}: {count} writer(s) waited for the lock after {WITHIN:.0f} s, "
                    f"not {writers}: a writer never reached the database while the lock was "
                    "held, and the race was not run"
                )
            await asyncio.sleep(0.01)  # polled until the deadline: not a wait for a guess

    # SQLite's side: the trace callback runs in the connection's aiosqlite thread

    def _checked_out(self, _dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = record.driver_connection  # aiosqlite's; its sqlite3 connection is in its thread
        key = id(driver)

        def traced(statement: str) -> None:
            if self.watching and statement.lstrip().upper().startswith(_WRITES):
                self._loop.call_soon_threadsafe(self._in_flight.__setitem__, key, statement)

        await_only(driver.set_trace_callback(traced))

    def _returned(self, conn: Connection, *_args: Any) -> None:
        # after the trace's call_soon_threadsafe: aiosqlite hands the result back the same way
        self._in_flight.pop(id(conn.connection.driver_connection), None)

    def _failed(self, context: ExceptionContext) -> None:
        if context.connection is not None:
            self._returned(context.connection)


@asynccontextmanager
async def lock_waits() -> AsyncIterator[LockWaits]:
    """Watch the app's database for writers waiting for a lock (see the module)."""
    engine = get_engine()
    backend = engine.dialect.name
    if backend == "postgresql":
        watcher = create_async_engine(engine.url, poolclass=NullPool)
        try:
            yield LockWaits(backend, watcher)
        finally:
            await watcher.dispose()
        return
    assert backend == "sqlite", backend
    waits = LockWaits(backend, None)
    listeners = [
        ("checkout", waits._checked_out),
        ("after_cursor_execute", waits._returned),
        ("handle_error", waits._failed),
    ]
    for name, listener in listeners:
        event.listen(engine.sync_engine, name, listener)
    try:
        yield waits
    finally:
        waits.watching = False  # the callbacks stay on the pooled connections, quiet
        for name, listener in listeners:
            event.remove(engine.sync_engine, name, listener)
