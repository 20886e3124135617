"""A worker with runs waiting starts the next one as soon as one of its runs ends, not at its next
poll (app/pipeline/worker.py, `look_when_a_run_ends`)."""

from collections.abc import Iterator
from datetime import datetime
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


async def test_a_waiting_run_starts_when_the_run_before_it_ends(
    one_slot_stack: RunningStack,
) -> None:
    async with httpx.AsyncClient(base_url=one_slot_stack.stack.api_url, timeout=30) as api:
        ids = []
        for n in range(3):
            body = {"name": f"queued-{n}", "record_count": 100, "trigger": True}
            ids.append((await api.post("/api/pipelines", json=body)).json()["id"])
        bodies = [await wait_for_final(api, i, within=2 * POLL_SECONDS + 30) for i in ids]
    runs = sorted((body["latest_run"] for body in bodies), key=lambda run: run["started_at"])
    assert [run["status"] for run in runs] == ["completed"] * 3
    gaps = [
        (
            datetime.fromisoformat(later["started_at"])
            - datetime.fromisoformat(earlier["completed_at"])
        ).total_seconds()
        for earlier, later in pairwise(runs)
    ]
    print(f"one slot, three runs: each started {gaps} s after the one before it ended")
    assert all(0 < gap < 10 for gap in gaps), gaps
