"""GET /api/pipelines/{id} answers finished pipelines from memory, for a bounded time.

A write by another process is simulated with the database driver itself (sqlite3 / asyncpg), which
this process's SQLAlchemy engine never sees; the app's own commits clear the cache at once.
"""

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app import read_cache
from app.db import get_sessionmaker
from app.models import Pipeline, Status
from tests.conftest import use_settings
from tests.support.rows import add_pipeline, add_run, done

STAGES = ("generate", "ingest", "process", "transform", "export")


@pytest.fixture(autouse=True)
async def restore_ttl() -> AsyncIterator[None]:
    """The tests below set PIPELINE_READ_CACHE_SECONDS; the rest of the suite keeps its default."""
    before = os.environ.get("PIPELINE_READ_CACHE_SECONDS")
    yield
    os.environ.pop("PIPELINE_READ_CACHE_SECONDS", None)
    await use_settings(**({"PIPELINE_READ_CACHE_SECONDS": before} if before else {}))


@dataclass
class Clock:
    """What app/read_cache.py reads as `time`: a monotonic clock the test steps by hand, so a
    TTL's end is where the test puts it however slow the machine."""

    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """read_cache's clock, and only its (the `time` module itself stays as it is)."""
    fake = Clock()
    monkeypatch.setattr(read_cache, "time", fake)
    return fake


async def rename_elsewhere(database_url: str, pipeline_id: int, name: str) -> None:
    """Rename a pipeline the way another process would: not through this process's engine."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as conn:
            conn.execute("UPDATE pipelines SET name = ? WHERE id = ?", (name, pipeline_id))
        return
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("UPDATE pipelines SET name = $1 WHERE id = $2", name, pipeline_id)
    finally:
        await conn.close()


async def finished_pipeline(name: str) -> int:
    pipeline_id = await add_pipeline(name)
    await add_run(pipeline_id, Status.COMPLETED, {s: done(0.5, 10, 10) for s in STAGES})
    return pipeline_id


async def names(client: httpx.AsyncClient, pipeline_id: int) -> str:
    response = await client.get(f"/api/pipelines/{pipeline_id}")
    assert response.status_code == 200
    return str(response.json()["name"])


async def test_a_finished_pipeline_is_served_from_memory_until_the_ttl(
    client: httpx.AsyncClient, database: str, clock: Clock
) -> None:
    await use_settings(PIPELINE_READ_CACHE_SECONDS="0.5")
    pipeline_id = await finished_pipeline("before")
    assert await names(client, pipeline_id) == "before"  # read at 1000.0, kept until 1000.5
    await rename_elsewhere(database, pipeline_id, "after")
    assert await names(client, pipeline_id) == "before"  # from memory
    clock.now = 1000.5
    assert await names(client, pipeline_id) == "before"  # the TTL's last moment
    clock.now = 1000.501
    assert await names(client, pipeline_id) == "after"


async def test_this_process_commits_clear_it_at_once(client: httpx.AsyncClient) -> None:
    await use_settings(PIPELINE_READ_CACHE_SECONDS="60")
    pipeline_id = await finished_pipeline("first")
    assert await names(client, pipeline_id) == "first"
    await add_run(pipeline_id, Status.RUNNING, {})  # e.g. a retry through this API
    body = (await client.get(f"/api/pipelines/{pipeline_id}")).json()
    assert (body["status"], body["latest_run"]["status"]) == ("running", "running")


async def test_a_running_pipeline_is_always_read_from_the_database(
    client: httpx.AsyncClient, database: str
) -> None:
    await use_settings(PIPELINE_READ_CACHE_SECONDS="60")
    pipeline_id = await add_pipeline("live")
    await add_run(pipeline_id, Status.RUNNING, {"generate": done(0.5, 10, 10)})
    assert await names(client, pipeline_id) == "live"
    await rename_elsewhere(database, pipeline_id, "renamed")
    assert await names(client, pipeline_id) == "renamed"
    assert read_cache.get(pipeline_id) is None


async def test_zero_turns_it_off(client: httpx.AsyncClient, database: str) -> None:
    await use_settings(PIPELINE_READ_CACHE_SECONDS="0")
    pipeline_id = await finished_pipeline("off")
    assert await names(client, pipeline_id) == "off"
    await rename_elsewhere(database, pipeline_id, "still off")
    assert await names(client, pipeline_id) == "still off"


async def test_an_unknown_pipeline_is_still_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/pipelines/4242")
    assert (response.status_code, response.json()) == (
        404,
        {"message": "pipeline 4242 not found", "detail": "pipeline 4242 not found"},
    )


async def test_concurrent_misses_load_once() -> None:
    loads = 0

    async def load() -> tuple[str, bytes]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return "completed", b'{"id": 7}'

    await use_settings(PIPELINE_READ_CACHE_SECONDS="60")
    bodies = await asyncio.gather(*(read_cache.fetch(7, load) for _ in range(64)))
    assert (loads, set(bodies)) == (1, {b'{"id": 7}'})


async def test_a_commit_during_the_load_keeps_its_result_out() -> None:
    async def load() -> tuple[str, bytes]:
        read_cache.invalidate()  # what a commit in the middle of the read does
        return "completed", b'{"id": 8}'

    await use_settings(PIPELINE_READ_CACHE_SECONDS="60")
    assert await read_cache.fetch(8, load) == b'{"id": 8}'
    assert read_cache.get(8) is None


async def test_a_read_after_a_commit_does_not_join_a_load_begun_before_it() -> None:
    """A DELETE committed while a read was loading: a read arriving after the 204 joined that load
    and got the deleted pipeline."""
    release = asyncio.Event()

    async def before_the_delete() -> tuple[str, bytes]:
        await release.wait()
        return "completed", b'{"id": 9}'

    async def after_the_delete() -> tuple[str, bytes]:
        return "gone", b"not found"

    await use_settings(PIPELINE_READ_CACHE_SECONDS="60")
    first = asyncio.create_task(read_cache.fetch(9, before_the_delete))
    await asyncio.sleep(0)  # the first read is loading
    read_cache.invalidate()  # the delete commits
    assert await read_cache.fetch(9, after_the_delete) == b"not found"
    release.set()
    assert await first == b'{"id": 9}'  # it began before the delete: either answer is right
    assert read_cache.get(9) is None


@pytest.mark.usefixtures("database")
async def test_a_read_between_the_commit_starting_and_ending_is_dropped() -> None:
    """The engine's commit event comes before the database has committed: a read in between
    sees the old rows. What it cached must not outlive the commit."""
    await use_settings(PIPELINE_READ_CACHE_SECONDS="60")
    pipeline_id = await add_pipeline("p")

    def read_meanwhile(*_: object) -> None:
        read_cache.put(pipeline_id, "completed", b"old", since=read_cache._generation)

    event.listen(Engine, "commit", read_meanwhile)
    try:
        async with get_sessionmaker()() as session:
            pipeline = await session.get(Pipeline, pipeline_id)
            assert pipeline is not None
            pipeline.name = "renamed"
            await session.commit()
    finally:
        event.remove(Engine, "commit", read_meanwhile)
    assert read_cache.get(pipeline_id) is None


@pytest.mark.usefixtures("database")
async def test_a_slow_read_is_kept_from_when_it_read_not_from_when_it_ended(
    clock: Clock,
) -> None:
    """Its expiry was counted from the load's end: staleness of the load's time plus the TTL."""
    await use_settings(PIPELINE_READ_CACHE_SECONDS="1")

    async def slow() -> tuple[str, bytes]:
        clock.now += 0.6  # the read takes 0.6 s
        return "completed", b"read at the start"

    assert await read_cache.fetch(7, slow) == b"read at the start"
    clock.now = 1000.9  # 0.9 s after the read began: kept
    assert read_cache.get(7) == b"read at the start"
    clock.now = 1001.1  # 1.1 s after the read began: past the TTL (counted from the end: 1.6)
    assert read_cache.get(7) is None
