"""The states our cancel and watchdog propose go through Prefect's own rules on a real server: a
flow run that ended meanwhile keeps its final state."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling, Completed, Failed, Running, Scheduled

from app.pipeline import orchestrator
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)


async def _flow_run_in(prefect: PrefectClient, *states: object) -> str:
    """A flow run of the deployment no worker takes (scheduled a day ahead), then moved by force
    through `states`, as a worker and the flow engine would move it."""
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    flow_run = await prefect.create_flow_run_from_deployment(
        deployment.id,
        parameters={"pipeline_id": 1, "record_count": 10},
        state=Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1)),
    )
    for state in states:
        await prefect.set_flow_run_state(flow_run.id, state, force=True)  # type: ignore[arg-type]
    return str(flow_run.id)


async def _history(prefect: PrefectClient, flow_run_id: str) -> list[str]:
    states = await prefect.read_flow_run_states(UUID(flow_run_id))
    return [state.name for state in states]


async def test_a_cancel_that_loses_the_race_to_a_completion_leaves_it_completed(
    stack: RunningStack, prefect: PrefectClient
) -> None:
    flow_run_id = await _flow_run_in(prefect, Running(), Completed())
    async with orchestrator.prefect_client() as client:
        # what cancel_flow_run proposes after it read the run as Running
        assert await orchestrator._propose(client, flow_run_id, Cancelling()) == (
            StateType.COMPLETED
        )
    assert await _history(prefect, flow_run_id) == ["Scheduled", "Running", "Completed"]


async def test_a_cancel_of_a_running_run_and_the_watchdog_s_crash_of_a_cancelling_one_are_set(
    stack: RunningStack, prefect: PrefectClient
) -> None:
    flow_run_id = await _flow_run_in(prefect, Running())
    assert await orchestrator.cancel_flow_run(flow_run_id) == StateType.RUNNING
    # Prefect's rules keep a Cancelling run from crashing: the watchdog's verdict still holds
    await orchestrator.mark_flow_run_crashed(flow_run_id, "watchdog: no heartbeat")
    assert await _history(prefect, flow_run_id) == ["Scheduled", "Running", "Cancelling", "Crashed"]
    flow_run = await prefect.read_flow_run(UUID(flow_run_id))
    assert flow_run.state is not None
    assert flow_run.state.message == "watchdog: no heartbeat"


async def test_the_watchdog_s_cancel_of_a_run_that_ended_meanwhile_leaves_its_end(
    stack: RunningStack, prefect: PrefectClient
) -> None:
    """The watchdog read a queued run as Pending; it ran and ended before the watchdog cancelled
    it, and Prefect's rules let Completed and Failed become Cancelled."""
    for final in (Completed(), Failed()):
        flow_run_id = await _flow_run_in(prefect, Running(), final)
        await orchestrator.cancel_stranded_flow_run(flow_run_id, "watchdog: never started")
        assert await _history(prefect, flow_run_id) == ["Scheduled", "Running", final.name]


async def test_the_watchdog_settles_what_a_killed_process_never_told_prefect(
    stack: RunningStack, prefect: PrefectClient
) -> None:
    """The row ended (failed, completed, cancelled); Prefect still showed Running or Cancelling,
    and its states are read and filtered by type on the server."""
    settled = {
        StateType.CRASHED: await _flow_run_in(prefect, Running()),
        StateType.COMPLETED: await _flow_run_in(prefect, Running()),
        StateType.CANCELLED: await _flow_run_in(prefect, Running(), Cancelling()),
    }
    unfinished = [StateType.RUNNING, StateType.CANCELLING]
    read = await orchestrator.read_flow_run_states(list(settled.values()), types=unfinished)
    assert sorted(state.name for state in read.values()) == ["Cancelling", "Running", "Running"]
    for settled_as, flow_run_id in settled.items():
        still = read[flow_run_id].type
        assert await orchestrator.settle_flow_run(flow_run_id, settled_as, "watchdog", still=still)
        # once it has moved on, it is left alone
        assert not await orchestrator.settle_flow_run(
            flow_run_id, StateType.CRASHED, "late", still=still
        )
    assert [await _history(prefect, i) for i in settled.values()] == [
        ["Scheduled", "Running", "Crashed"],
        ["Scheduled", "Running", "Completed"],
        ["Scheduled", "Running", "Cancelling", "Cancelled"],
    ]
    assert await orchestrator.read_flow_run_states(list(settled.values()), types=unfinished) == {}
