"""What a stopping worker hands back (app/pipeline/hand_back.py): the runs it took that Prefect
still shows Pending, and nothing else — a run that reached Running, or that a cancel or a crash
ended meanwhile, is not scheduled again. Against a stand-in for Prefect's client."""

from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import (
    OrchestrationResult,
    SetStateStatus,
    StateAbortDetails,
    StateAcceptDetails,
)
from prefect.states import Cancelled, Crashed, Pending, Running, State

from app.pipeline.hand_back import hand_back, handed_back_message

RUNS = {
    UUID(int=1): Pending(),
    UUID(int=2): Pending(name="Submitting"),
    UUID(int=3): Running(),
    UUID(int=4): Cancelled(),
    UUID(int=5): Crashed(),
    UUID(int=6): Pending(),  # the server refuses its Scheduled
}


class _Prefect:
    """Prefect's API: each run's state, and the states proposed to it."""

    def __init__(self) -> None:
        self.proposed: list[tuple[UUID, str, str | None]] = []

    async def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        return FlowRun(id=flow_run_id, flow_id=UUID(int=0), state=RUNS[flow_run_id])

    async def set_flow_run_state(
        self, flow_run_id: UUID, state: State[Any], force: bool = False
    ) -> OrchestrationResult[Any]:
        self.proposed.append((flow_run_id, state.type.value, state.message))
        if flow_run_id == UUID(int=6):
            return OrchestrationResult(
                status=SetStateStatus.ABORT, state=None, details=StateAbortDetails()
            )
        return OrchestrationResult(
            status=SetStateStatus.ACCEPT, state=state, details=StateAcceptDetails()
        )


async def test_only_runs_still_pending_are_scheduled_again() -> None:
    prefect, lines = _Prefect(), []
    handed_back = await hand_back(prefect, RUNS, worker="w-1", log=lines.append)
    assert handed_back == [UUID(int=1), UUID(int=2)]
    message = handed_back_message("w-1")
    assert prefect.proposed == [
        (UUID(int=1), "SCHEDULED", message),
        (UUID(int=2), "SCHEDULED", message),
        (UUID(int=6), "SCHEDULED", message),
    ]
    assert lines == [
        f"flow run {UUID(int=n)} handed back (Scheduled): its process never started" for n in (1, 2)
    ]
    assert message == (
        "handed back by worker 'w-1', which stopped before this flow run's process started: "
        "scheduled again for the next worker"
    )


async def test_a_server_that_does_not_answer_leaves_the_run_pending() -> None:
    class Away(_Prefect):
        async def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
            raise ConnectionError("refused")

    prefect, lines = Away(), []
    assert await hand_back(prefect, [UUID(int=1)], worker="w-1", log=lines.append) == []
    assert prefect.proposed == []
    assert lines == [f"could not hand back flow run {UUID(int=1)}: ConnectionError('refused')"]
