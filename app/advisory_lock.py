"""A PostgreSQL session-level advisory lock, held by a connection of this process for as long as it
runs: the kernel's flocks of app/stack_lock.py cannot see a database another machine serves.

The connection lives on an event loop of its own, in a thread, so a process with no event loop
(`make up`) or one already running another (the tests) holds it alike. The server drops the lock
as the connection ends, however this process ends."""

import asyncio
import os
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import create_engine

T = TypeVar("T")
TIMEOUT_SECONDS = 30.0
# pg_try_advisory_lock(int4, int4)'s two keys: this service's stacks, and what they lock
SERVICE_KEY = 0x70697065  # "pipe"
HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = :service AND l.objid = :key "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class AdvisoryLock:
    """The lock `key` of this service in the database of `url`, held once take() says so."""

    def __init__(self, url: str, key: int, *, holder: str) -> None:
        self.url = url
        self.key = key
        # what pg_stat_activity shows of this session: a refused stack names the one holding it
        self.holder = f"{holder} (process {os.getpid()} on {socket.gethostname()})"
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None
        self._loop = asyncio.new_event_loop()
        # the running thread keeps this object, and so the connection, until release()
        self._thread = threading.Thread(target=self._run, name="advisory-lock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._loop.run_forever()

    def take(self) -> bool:
        """Take the lock without waiting: False when another session holds it. The
        connection's errors are raised as they are, the thread stopped."""
        try:
            return self._call(self._take())
        except BaseException:
            self.release()
            raise

    def held_by(self) -> str | None:
        """Who holds the lock, as its session named itself (None: no one, or not visible to
        this database user)."""
        return self._call(self._held_by())

    def release(self) -> None:
        """Close the connection (the server drops the lock) and stop the thread."""
        if self._loop.is_closed():
            return
        try:
            self._call(self._close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT_SECONDS)
            self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT_SECONDS)

    async def _take(self) -> bool:
        self._engine = create_engine(self.url)
        self._connection = await self._engine.connect()
        await self._connection.execute(
            text("SELECT set_config('application_name', :name, false)"), {"name": self.holder}
        )
        taken = await self._connection.scalar(
            text("SELECT pg_try_advisory_lock(:service, :key)"),
            {"service": SERVICE_KEY, "key": self.key},
        )
        await self._connection.commit()  # idle, not idle in a transaction, for its whole life
        return bool(taken)

    async def _held_by(self) -> str | None:
        engine = create_engine(self.url)
        try:
            async with engine.connect() as connection:
                found = await connection.scalar(
                    text(HOLDER), {"service": SERVICE_KEY, "key": self.key}
                )
                return str(found) if found is not None else None
        finally:
            await engine.dispose()

    async def _close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
