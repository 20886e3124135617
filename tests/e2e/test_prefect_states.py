"""The states our cancel and watchdog propose go through Prefect's own rules on a real server: a
flow run that ended meanwhile keeps its final state; a stranded run's cancel cannot be made
conditional, and tells a start it overwrote; a cancelled run's Crash is replaced only by force."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import (
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Pending,
    Running,
    Scheduled,
)

from app.pipeline import orchestrator
from app.pipeline.reconcile import flow_run_fixes
from app.pipeline.reconcile.flow_run_fixes import Stranded
from app.pipeline.status import run_tag
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)


async def _flow_run_in(prefect: PrefectClient, *states: object) -> str:
    """A flow run of the deployment no worker takes (scheduled a day ahead), then moved by force
    through `states`, as a worker and the flow engine would move it. Tagged with a run as the
    API's are: untagged, the stack's watchdog took a Crashed one for a schedule's run that never
    began, and scheduled it again (app/pipeline/reconcile/unclaimed.py)."""
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    flow_run = await prefect.create_flow_run_from_deployment(
        deployment.id,
        parameters={"pipeline_id": 1, "record_count": 10},
        tags=[run_tag(999_999)],
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
        assert await orchestrator.propose(client, flow_run_id, Cancelling()) == (
            StateType.COMPLETED
        )
    assert await _history(prefect, flow_run_id) == ["Scheduled", "Running", "Completed"]


async def test_a_cancel_of_a_running_run_and_the_watchdog_s_crash_of_a_cancelling_one_are_set(
    stack: RunningStack, prefect: PrefectClient
) -> None:
    flow_run_id = await _flow_run_in(prefect, Running())
    assert await orchestrator.cancel_flow_run(flow_run_id) == StateType.RUNNING
    # Prefect's rules keep a Cancelling run from crashing: the watchdog's verdict still holds
    await flow_run_fixes.mark_flow_run_crashed(flow_run_id, "watchdog: no heartbeat")
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
        await flow_run_fixes.cancel_stranded_flow_run(flow_run_id, "watchdog: never started")
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
        assert await flow_run_fixes.settle_flow_run(
            flow_run_id, settled_as, "watchdog", still=still
        )
        # once it has moved on, it is left alone
        assert not await flow_run_fixes.settle_flow_run(
            flow_run_id, StateType.CRASHED, "late", still=still
        )
    assert [await _history(prefect, i) for i in settled.values()] == [
        ["Scheduled", "Running", "Crashed"],
        ["Scheduled", "Running", "Completed"],
        ["Scheduled", "Running", "Cancelling", "Cancelled"],
    ]
    assert await orchestrator.read_flow_run_states(list(settled.values()), types=unfinished) == {}


async def test_prefect_cancels_a_running_run_as_readily_as_a_pending_one(
    stack: RunningStack, prefect: PrefectClient
) -> None:
    """Why the watchdog's cancel of a run stranded Pending cannot be conditional: no rule of
    Prefect's refuses Cancelled from Running (only a Pending proposal is refused there, and a
    Pending run it leaves Pending, free to start)."""
    for before in (Pending(), Running()):
        flow_run_id = await _flow_run_in(prefect, before)
        result = await prefect.set_flow_run_state(UUID(flow_run_id), Cancelled())
        assert result.status == SetStateStatus.ACCEPT
    started = await _flow_run_in(prefect, Pending(), Running())
    result = await prefect.set_flow_run_state(UUID(started), Pending(name="Stranded"))
    assert result.status == SetStateStatus.ABORT


async def test_a_stranded_run_s_cancel_tells_a_start_it_overwrote(
    stack: RunningStack, prefect: PrefectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending past the watchdog's patience; its process made it Running between the watchdog's
    read and its cancel (Prefect's run count went up), and Prefect took the Cancelled all the
    same. Unraced, the same cancel says Cancelled."""

    async def cancel(flow_run_id: str) -> Stranded:
        message = "watchdog: never started"
        return await flow_run_fixes.cancel_stranded_flow_run(
            flow_run_id, message, still=StateType.PENDING
        )

    calm = await _flow_run_in(prefect, Pending())
    assert await cancel(calm) == Stranded.CANCELLED
    assert await _history(prefect, calm) == ["Scheduled", "Pending", "Cancelled"]

    raced = await _flow_run_in(prefect, Pending())
    propose = orchestrator.propose

    async def started_first(client: PrefectClient, flow_run_id: str, *args: Any, **kw: Any) -> Any:
        # the flow-run process's own proposal, as the engine makes it (no force)
        accepted = await prefect.set_flow_run_state(UUID(flow_run_id), Running())
        assert accepted.status == SetStateStatus.ACCEPT
        return await propose(client, flow_run_id, *args, **kw)

    monkeypatch.setattr(flow_run_fixes, "propose", started_first)
    assert await cancel(raced) == Stranded.STARTED
    # and then Cancelling: a worker stops a process only on that (after a plain Cancelled the
    # process ran every stage, and Prefect took its Completed)
    assert await _history(prefect, raced) == [
        "Scheduled", "Pending", "Running", "Cancelled", "Cancelling"
    ]  # fmt: skip
    monkeypatch.undo()
    # once Running, the watchdog leaves it alone
    moved_on = await _flow_run_in(prefect, Pending(), Running())
    assert await cancel(moved_on) == Stranded.LEFT
    assert await _history(prefect, moved_on) == ["Scheduled", "Pending", "Running"]


async def test_a_cancelled_run_s_crash_becomes_cancelled_only_by_force(
    stack: RunningStack, prefect: PrefectClient
) -> None:
    """The user's cancel, then the worker stopped at once: the run's engine forced Crashed over
    Cancelling. Prefect's rules keep a final state from Cancelled: only forced does it move."""
    crashed = Crashed(message="Execution was cancelled by the runtime environment.")
    kept = await _flow_run_in(prefect, Running(), Cancelling(), crashed)
    assert not await flow_run_fixes.settle_flow_run(  # False: Prefect kept what it had
        kept, StateType.CANCELLED, "watchdog", still=StateType.CRASHED
    )
    assert await _history(prefect, kept) == ["Scheduled", "Running", "Cancelling", "Crashed"]

    forced = await _flow_run_in(prefect, Running(), Cancelling(), crashed)
    message = "watchdog: this service's run was cancelled"
    assert await flow_run_fixes.settle_flow_run(
        forced, StateType.CANCELLED, message, still=StateType.CRASHED, force=True
    )
    assert await _history(prefect, forced) == [
        "Scheduled",
        "Running",
        "Cancelling",
        "Crashed",
        "Cancelled",
    ]
    flow_run = await prefect.read_flow_run(UUID(forced))
    assert flow_run.state is not None and flow_run.state.message == message
