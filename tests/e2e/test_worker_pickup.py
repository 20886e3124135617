"""A worker looks for runs at once when a run is scheduled on its pool and when one of its runs
ends, not at its next poll (app/pipeline/worker.py, `look_promptly`).

The worker here polls every hour: Prefect jitters that by ±30%, so after the poll it makes as it
starts, none comes for 42 min, far beyond what the test waits for any run. A run it starts after
that first poll was found by a look `look_promptly` asked for, whatever the machine's load; no
wall-clock bound is asserted."""

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningStack, started_stack
from tests.e2e.helpers import wait_for_final

POLL_SECONDS = 3600  # no poll comes sooner than 2520 s after another (nor after the first)
WAIT_SECONDS = 90  # for a run to finish: a run that waited for a poll would take 2520 s


@pytest.fixture
def one_slot_stack(request: pytest.FixtureRequest, tmp_root: Path) -> Iterator[RunningStack]:
    """A stack whose worker is not started yet: it has a single slot and polls every
    POLL_SECONDS."""
    env = {"PREFECT_WORKER_QUERY_SECONDS": str(POLL_SECONDS)}
    with started_stack(
        "postgresql", request, tmp_root, name="pickup", workers=0, worker_limit=1, env=env
    ) as running:
        yield running


def _at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp).astimezone(UTC)


async def test_runs_start_when_scheduled_and_when_a_slot_frees(
    one_slot_stack: RunningStack,
) -> None:
    async with httpx.AsyncClient(base_url=one_slot_stack.stack.api_url, timeout=30) as api:

        async def trigger(name: str) -> int:
            body = {"name": name, "record_count": 100, "trigger": True}
            return int((await api.post("/api/pipelines", json=body)).json()["id"])

        # scheduled before the worker starts: the poll it makes as it starts takes it (a run
        # scheduled while a worker starts could fall between that poll and its event stream)
        first = await trigger("first")
        one_slot_stack.stack.start_worker(1)
        assert (await wait_for_final(api, first, within=WAIT_SECONDS))["status"] == "completed"

        # no poll is due for 42 min: the run scheduled on the idle worker's pool starts now
        alone = await wait_for_final(api, await trigger("alone"), within=WAIT_SECONDS)
        assert alone["status"] == "completed"

        # one slot, three runs at once: the second and third can only be taken as a slot frees
        ids = [await trigger(f"queued-{n}") for n in range(3)]
        bodies = [await wait_for_final(api, i, within=WAIT_SECONDS) for i in ids]
    runs = sorted((body["latest_run"] for body in bodies), key=lambda run: run["started_at"])
    assert [run["status"] for run in runs] == ["completed"] * 3
    # each began after the one before it ended, on the database's clock: the slot was taken
    gaps = [
        (_at(later["started_at"]) - _at(earlier["completed_at"])).total_seconds()
        for earlier, later in pairwise(runs)
    ]
    print(f"one slot, three runs: each started {gaps} s after the one before it ended")
    assert all(gap > 0 for gap in gaps), gaps
