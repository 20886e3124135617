"""A worker looks for runs at once when a run is scheduled on its pool and when one of its runs
ends, not at its next poll (app/pipeline/worker.py, `look_promptly`)."""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningStack, started_stack
from tests.e2e.helpers import wait_for_final

POLL_SECONDS = 30  # Prefect jitters it by ±30%: no poll comes sooner than 21 s after another


@pytest.fixture
def one_slot_stack(request: pytest.FixtureRequest, tmp_root: Path) -> Iterator[RunningStack]:
    """One worker with a single slot that polls every POLL_SECONDS."""
    env = {"PREFECT_WORKER_QUERY_SECONDS": str(POLL_SECONDS)}
    with started_stack(
        "postgresql", request, tmp_root, name="pickup", worker_limit=1, env=env
    ) as running:
        yield running


def _at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp).astimezone(UTC)


async def test_runs_start_when_scheduled_and_when_a_slot_frees(
    one_slot_stack: RunningStack,
) -> None:
    async with httpx.AsyncClient(base_url=one_slot_stack.stack.api_url, timeout=30) as api:

        async def run_alone(name: str) -> float:
            sent = time.monotonic()
            body = {"name": name, "record_count": 100, "trigger": True}
            alone = (await api.post("/api/pipelines", json=body)).json()["id"]
            await wait_for_final(api, alone, within=3 * POLL_SECONDS)
            return time.monotonic() - sent

        await run_alone("first")  # the stack's first run; the worker may not have polled yet
        await asyncio.sleep(3)  # the worker's next poll is still 18 s away or more
        lone_run_s = await run_alone("alone")

        ids = []
        for n in range(3):
            body = {"name": f"queued-{n}", "record_count": 100, "trigger": True}
            ids.append((await api.post("/api/pipelines", json=body)).json()["id"])
        bodies = [await wait_for_final(api, i, within=3 * POLL_SECONDS) for i in ids]
    runs = sorted((body["latest_run"] for body in bodies), key=lambda run: run["started_at"])
    assert [run["status"] for run in runs] == ["completed"] * 3
    gaps = [
        (_at(later["started_at"]) - _at(earlier["completed_at"])).total_seconds()
        for earlier, later in pairwise(runs)
    ]
    print(f"a lone run took {lone_run_s:.2f} s; one slot, three runs: each started {gaps} s after")
    assert lone_run_s < 5  # not waiting for the next poll
    assert all(0 < gap < 10 for gap in gaps), gaps
