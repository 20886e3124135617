"""A short-lived cache of finished pipelines' JSON, for the hot read `GET /api/pipelines/{id}`.

Dashboards and scripts poll finished pipelines over and over; answering those from memory makes
that read as cheap as a bare endpoint. Only pipelines whose latest run is completed, failed or
cancelled are kept — pending and running ones are always read from the database. Any commit made
by this process (the API's writes, its watchdog) empties the cache at once; a change committed by
another process — a worker claiming a scheduled run, another API replica's trigger — shows within
PIPELINE_READ_CACHE_SECONDS (1 s by default; 0 turns the cache off).
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.config import get_settings

FINAL = frozenset({"completed", "failed", "cancelled"})
MAX_ENTRIES = 10_000

_entries: dict[int, tuple[float, bytes]] = {}
_loading: dict[int, tuple[int, asyncio.Future[bytes]]] = {}  # the generation each load began in
_generation = 0


async def fetch(pipeline_id: int, load: Callable[[], Awaitable[tuple[str, bytes]]]) -> bytes:
    """The pipeline's JSON: from memory, or from `load` (status, body) — one load per pipeline at
    a time, so an expiry under 64 concurrent readers costs one database read, not 64."""
    while True:
        cached = get(pipeline_id)
        if cached is not None:
            return cached
        generation, loading = _loading.get(pipeline_id, (None, None))
        if loading is None or generation != _generation:
            break  # a load begun before the last commit may answer with what it changed
        with contextlib.suppress(asyncio.CancelledError):
            return await asyncio.shield(loading)
        if not loading.cancelled():  # this request itself was cancelled, not the load
            raise asyncio.CancelledError
    since, read_at = _generation, time.monotonic()
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    _loading[pipeline_id] = (since, future)
    try:
        status, body = await load()
    except asyncio.CancelledError:
        future.cancel()  # the waiters load it themselves
        raise
    except Exception as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody was waiting
        raise
    finally:
        if _loading.get(pipeline_id, (None, None))[1] is future:
            del _loading[pipeline_id]
    put(pipeline_id, status, body, since=since, read_at=read_at)
    future.set_result(body)
    return body


def get(pipeline_id: int) -> bytes | None:
    entry = _entries.get(pipeline_id)
    if entry is None:
        return None
    if entry[0] < time.monotonic():
        _entries.pop(pipeline_id, None)
        return None
    return entry[1]


def put(
    pipeline_id: int, status: str, body: bytes, *, since: int, read_at: float | None = None
) -> None:
    """Keep a body read at `read_at` (its load's start: a slow read is no younger for it) for
    PIPELINE_READ_CACHE_SECONDS from then."""
    ttl = get_settings().read_cache_seconds
    if ttl <= 0 or status not in FINAL or since != _generation:
        return
    if len(_entries) >= MAX_ENTRIES:
        _entries.pop(next(iter(_entries)))  # the oldest
    _entries[pipeline_id] = ((time.monotonic() if read_at is None else read_at) + ttl, body)


def invalidate() -> None:
    global _generation
    _generation += 1
    _entries.clear()


# before the database commits (a Core or ORM commit), and again once it has (an ORM commit): a
# read that ran in between saw the old rows, and what it cached is dropped
@event.listens_for(Engine, "commit")
@event.listens_for(Session, "after_commit")
def _on_commit(*_: Any) -> None:
    invalidate()
