"""The states the watchdog sets on flow runs Prefect shows wrongly: a crash, the cancel of a run
no process will start, the end this service's row already has, a flow run scheduled again that
crashed before it began; each only while the flow run is where the watchdog read it."""

from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Cancelled, Cancelling, Completed, Crashed, Scheduled

from app.pipeline.orchestrator import prefect_client, propose


async def mark_flow_run_crashed(flow_run_id: str, message: str) -> None:
    """Tell Prefect a run whose process is gone has crashed, so it stops showing Running."""
    async with prefect_client() as client:
        await propose(client, flow_run_id, Crashed(message=message))


class Stranded(Enum):
    """What the cancel of a flow run the watchdog gave up on came to."""

    LEFT = "left"  # it had moved on (started, ended) before: left alone
    CANCELLED = "cancelled"
    STARTED = "started"  # its process made it Running just as it was cancelled: told to stop


async def cancel_stranded_flow_run(
    flow_run_id: str, message: str, *, still: StateType | None = None
) -> Stranded:
    """Cancel a run that never started, so a worker cannot pick it up after we gave up on it;
    with `still`, only while it is in that state. Prefect cannot make a Cancelled conditional on
    the state it replaces: a Running accepted between this read and the cancel is overwritten
    all the same, and told by the run count it added (Prefect counts each entry into Running).
    Such a run is then made Cancelling (forced, over the Cancelled): its worker stops a process
    only on a Cancelling — after a plain Cancelled it ran every stage, and Prefect took its
    Completed over the Cancelled."""
    async with prefect_client() as client:
        before = await client.read_flow_run(UUID(flow_run_id))
        if still is not None and (before.state is None or before.state.type != still):
            return Stranded.LEFT
        cancelled: State[Any] = Cancelled(message=message)
        if await propose(client, flow_run_id, cancelled, current=before.state) is not None:
            return Stranded.LEFT  # it ended meanwhile: its end is kept
        after = await client.read_flow_run(UUID(flow_run_id))
        if after.run_count <= before.run_count:
            return Stranded.CANCELLED
        stopping: State[Any] = Cancelling(message=message)
        await client.set_flow_run_state(UUID(flow_run_id), stopping, force=True)
    return Stranded.STARTED


_SETTLED = {
    StateType.CANCELLED: Cancelled,
    StateType.CRASHED: Crashed,
    StateType.COMPLETED: Completed,
}


async def settle_flow_run(
    flow_run_id: str,
    settled_as: StateType,
    message: str,
    *,
    still: StateType | None = None,
    force: bool = False,
) -> bool:
    """Set a flow run Cancelled, Crashed or Completed (`settled_as`), as its worker or process
    would have had they lived; with `still`, only while it is in that state: False, left alone,
    once it has moved on, or when Prefect kept the state it has (a final one, unforced).
    `force`: past Prefect's rules, which keep a final state as it is."""
    async with prefect_client() as client:
        current = None
        if still is not None:
            current = (await client.read_flow_run(UUID(flow_run_id))).state
            if current is None or current.type != still:
                return False
        state: State[Any] = _SETTLED[settled_as](message=message)
        if force:
            await client.set_flow_run_state(UUID(flow_run_id), state, force=True)
            return True
        return await propose(client, flow_run_id, state, current=current) is None


async def schedule_again(
    flow_run_id: str, message: str, *, still: UUID, at: datetime | None = None
) -> bool:
    """Put a flow run that ended before its process began the run back to Scheduled (due `at`,
    its first time), for a worker to take; only while its state is still `still` (the one read):
    False, left alone, once it has moved on or Prefect refused (its rules let a run leave Crashed
    for Scheduled, as Prefect's own retry from its UI does)."""
    async with prefect_client() as client:
        current = (await client.read_flow_run(UUID(flow_run_id))).state
        if current is None or current.id != still:
            return False
        state: State[Any] = Scheduled(scheduled_time=at, message=message)
        result = await client.set_flow_run_state(UUID(flow_run_id), state)
        return result.status == SetStateStatus.ACCEPT
