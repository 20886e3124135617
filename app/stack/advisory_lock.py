"""A PostgreSQL session-level advisory lock, held by a connection of this process for as long as it
runs: the kernel's flocks of app/stack/locks.py cannot see a database another machine serves.

The connection lives on an event loop of its own, in a thread, so a process with no event loop
(`make up`) or one already running another (the tests) holds it alike. The server drops the lock
as the connection ends, however this process ends — and also when the server restarts or the
connection is cut: the lock is then lost without a word, and a second stack could take it. So the
thread checks the connection every KEEP_SECONDS and, when it is gone, takes the lock again on a
new one, saying so (or that another session took it meanwhile). A pooler in transaction mode
(PgBouncer) cannot hold a session's lock: point DATABASE_URL at PostgreSQL itself."""

import asyncio
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

T = TypeVar("T")
TIMEOUT_SECONDS = 30.0
CONNECT_SECONDS = 10.0  # asyncpg's own is 60 s: an address that never answers is named sooner
KEEP_SECONDS = 10.0
# the server probes an idle connection, so a firewall or NAT forgetting it is found out
KEEPALIVES = {"tcp_keepalives_idle": "60", "tcp_keepalives_interval": "10"}
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
        self._keeper: asyncio.Task[None] | None = None
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
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(TIMEOUT_SECONDS)
        except TimeoutError:
            future.cancel()  # nothing left running that could still take the lock
            raise TimeoutError(
                f"no answer from the database within {TIMEOUT_SECONDS:g} s"
            ) from None

    async def _take(self) -> bool:
        taken = await self._connect_and_take()
        if taken:
            self._keeper = asyncio.create_task(self._keep())
        return taken

    async def _keep(self) -> None:
        """Every KEEP_SECONDS: the connection still there, or the lock taken again on a new one."""
        lost = False
        while True:
            await asyncio.sleep(KEEP_SECONDS)
            try:
                assert self._connection is not None
                await self._connection.scalar(text("SELECT 1"))
                await self._connection.commit()
                continue
            except Exception as exc:
                if not lost:
                    _say(
                        f"the lock on DATABASE_URL was lost ({type(exc).__name__}: {exc}); "
                        "taking it again"
                    )
                lost = True
            with contextlib.suppress(Exception):  # a connection cut closes with an error
                await self._close()
            try:
                taken = await self._connect_and_take()
            except Exception:
                continue  # still unreachable: again after KEEP_SECONDS
            if taken:
                _say("the lock on DATABASE_URL is held again")
            else:
                holder = await self._held_by()
                _say(
                    f"another session took the lock on DATABASE_URL while it was lost "
                    f"({holder or 'not visible'}): two stacks may now share this database; "
                    "stop one of them"
                )
                await self._close()
                return
            lost = False

    async def _connect_and_take(self) -> bool:
        self._engine = create_async_engine(
            self.url,
            poolclass=NullPool,
            connect_args={"timeout": CONNECT_SECONDS, "server_settings": KEEPALIVES},
        )
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
        engine = create_async_engine(
            self.url, poolclass=NullPool, connect_args={"timeout": CONNECT_SECONDS}
        )
        try:
            async with engine.connect() as connection:
                found = await connection.scalar(
                    text(HOLDER), {"service": SERVICE_KEY, "key": self.key}
                )
                return str(found) if found is not None else None
        finally:
            await engine.dispose()

    async def _close(self) -> None:
        if self._keeper is not None and self._keeper is not asyncio.current_task():
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)
