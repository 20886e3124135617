"""A cancel that lands while the worker starts the run's process: Prefect shows the flow run
Pending, the API's cancel sets it Cancelling, and the process's engine then finds its Running
refused. The engine ended on `UnfinishedRun` with a traceback, exit 1 ("a general error" in the
worker's log), and the flow run stayed Cancelling until the watchdog settled it ~70 s later.

The race is made exact here: the flow run is made Pending and then Cancelling in the stack's real
Prefect server before a real launcher hands it to a real zygote, or, without one, starts it cold
(a worker started as plain `prefect worker start`): both end it Cancelled."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling, Pending

from app.pipeline.deploy import DEPLOYMENT_NAME
from tests.e2e.conftest import RunningStack
from tests.e2e.test_warm_start import launch, started_zygote

CANCELLED_THROUGH_THE_API = "cancelled through the API"


@pytest.fixture
def stack_zygote(stack: RunningStack, tmp_path: Path) -> Iterator[str]:
    """A zygote of this stack's settings (its Prefect server), as a worker of it starts one."""
    path = str(tmp_path / "zygote.sock")
    with started_zygote(path):
        yield path


async def _pending_flow_run(prefect: PrefectClient) -> uuid.UUID:
    """A flow run of the deployment as the worker leaves it before its process runs: Pending (no
    worker takes a Pending run), of a pipeline that does not exist."""
    deployment = await prefect.read_deployment_by_name(f"Data Pipeline/{DEPLOYMENT_NAME}")
    flow_run = await prefect.create_flow_run_from_deployment(
        deployment.id, parameters={"pipeline_id": 987654, "record_count": 1000}, state=Pending()
    )
    return flow_run.id


@pytest.mark.parametrize("start", ["warm", "cold"])
async def test_a_run_cancelled_as_its_process_starts_ends_cancelled_at_once(
    stack: RunningStack, prefect: PrefectClient, stack_zygote: str, start: str
) -> None:
    flow_run_id = await _pending_flow_run(prefect)
    await prefect.set_flow_run_state(flow_run_id, Cancelling(message=CANCELLED_THROUGH_THE_API))

    launcher = launch(stack_zygote if start == "warm" else None, str(flow_run_id))
    output, _ = launcher.communicate(timeout=120)

    flow_run = await prefect.read_flow_run(flow_run_id)
    assert flow_run.state is not None
    assert (flow_run.state.type, flow_run.state.message) == (
        StateType.CANCELLED,
        CANCELLED_THROUGH_THE_API,
    )
    assert launcher.returncode == 0, output
    assert "Traceback" not in output
    assert "UnfinishedRun" not in output
    assert f"flow run {flow_run_id} was cancelled before it began: Cancelled" in output
    assert ("starting the flow run cold" in output) == (start == "cold")


async def test_a_flow_run_that_cannot_be_read_keeps_the_engines_exit(
    stack: RunningStack, stack_zygote: str
) -> None:
    """Only a Cancelling flow run is ended by its process; a flow run Prefect does not have is
    the engine's own failure, exit 1, and the process's look at its state does not hide it."""
    flow_run_id = uuid.uuid4()

    launcher = launch(stack_zygote, str(flow_run_id))
    output, _ = launcher.communicate(timeout=120)

    assert launcher.returncode == 1
    assert f"Flow run with id {flow_run_id} not found" in output or "ObjectNotFound" in output
    assert "was cancelled before it began" not in output
