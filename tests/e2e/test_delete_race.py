"""Cancel a run while its first stage is writing, then delete its pipeline at once: nothing of the
run's directory is left once its flow-run process has ended. The delete used to remove the
directory while the stage went on adding files to it, and what it added stayed until retention."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import start_flow_run, wait_for_flow_run, wait_for_stage

pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)

# generate writes 400 small parts: a new file every few milliseconds while the delete removes them
RECORDS, BATCH_ROWS = 4_000_000, 10_000


def _left(runs: Path, run_id: int) -> list[str]:
    """What is left of the run's directory, and of any removal of it, under `runs`."""
    return sorted(
        str(path.relative_to(runs))
        for path in runs.rglob("*")
        if path.relative_to(runs).parts[0] == str(run_id) or path.name.startswith(".")
    )


async def test_delete_right_after_cancel_leaves_nothing_of_the_run(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    pipeline = (
        await api.post(
            "/api/pipelines", json={"name": "cancel-then-delete", "record_count": RECORDS}
        )
    ).json()
    flow_run_id = await start_flow_run(
        prefect, pipeline["id"], RECORDS, {"PIPELINE_BATCH_ROWS": str(BATCH_ROWS)}
    )
    run = (await wait_for_stage(api, pipeline["id"], "generate", "running"))["latest_run"]
    runs = stack.data_dir / "runs"
    deadline = time.monotonic() + 30
    while not list((runs / str(run["id"]) / "raw").glob("part-*.parquet")):  # it is writing
        assert time.monotonic() < deadline, "generate wrote no part in 30 s"
        await asyncio.sleep(0.02)

    cancelled = await api.post(f"/api/pipelines/{pipeline['id']}/cancel")
    deleted = await api.delete(f"/api/pipelines/{pipeline['id']}")
    assert (cancelled.status_code, deleted.status_code) == (202, 204)

    flow_run = await wait_for_flow_run(prefect, flow_run_id, within=90)
    assert flow_run.state is not None and flow_run.state.is_cancelled()
    await asyncio.sleep(2)  # the flow-run process has ended: nothing writes any more
    assert _left(runs, run["id"]) == []
