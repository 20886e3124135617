"""Worker heartbeats against the Prefect server's own clock: the times Prefect's server wrote are
aged with its "now" (the Date of its answer), not this machine's (app/pipeline/clocks.py, pool.py)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import httpx
import pytest

from app.models import utcnow
from app.pipeline import pool
from app.pipeline.clocks import server_offset

SENT = datetime(2026, 11, 27, 12, 0, 0, 200_000, tzinfo=UTC)
RECEIVED = SENT + timedelta(milliseconds=200)


def _answer(date: datetime | None) -> httpx.Response:
    headers = {"date": format_datetime(date, usegmt=True)} if date else {}
    return httpx.Response(200, json=True, headers=headers)


def test_the_servers_offset_is_read_from_its_answers_date_to_its_second() -> None:
    two_minutes_behind = datetime(2026, 11, 27, 11, 58, 0, tzinfo=UTC)
    offsets = [
        server_offset(_answer(date), sent=SENT, received=RECEIVED)
        for date in (two_minutes_behind, datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC), None)
    ]
    # written within 12:00:00.2-12:00:00.4 by our clock, within 11:58:00-11:58:01 by its own
    assert offsets == [timedelta(seconds=-119.8), timedelta(0), timedelta(0)]


class _Server:
    """A Prefect server whose clock is two minutes behind this machine's."""

    def __init__(self) -> None:
        self.now = utcnow() - timedelta(minutes=2)

    async def request(self, method: str, path: str) -> httpx.Response:
        return _answer(self.now)

    async def read_work_pool(self, name: str) -> Any:
        pool_id = UUID("5d3c1c7e-8f0a-4a57-9a57-3f1d5e8b2c10")
        return SimpleNamespace(id=pool_id, is_paused=False, concurrency_limit=None)

    async def read_workers_for_work_pool(self, name: str) -> list[Any]:
        beat = self.now - timedelta(seconds=10)  # stamped by the server as it recorded it
        return [SimpleNamespace(name="worker-1", last_heartbeat_time=beat)]

    async def read_deployment_by_name(self, name: str) -> Any:
        return SimpleNamespace(work_pool_name="default")

    async def read_events(self, filter: Any, limit: int) -> Any:
        return SimpleNamespace(events=[])


async def test_a_worker_that_beat_10_s_ago_by_the_servers_clock_is_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Aged on this machine's clock, its heartbeat was 130 s old: no live worker, `/ready`
    failing and the watchdog failing pending runs after the no-worker timeout."""

    @asynccontextmanager
    async def client() -> AsyncIterator[_Server]:
        yield _Server()

    monkeypatch.setattr(pool, "prefect_client", client)
    health = await pool.pool_health()
    assert (health.live_workers, health.takes_runs) == (["worker-1"], True)
