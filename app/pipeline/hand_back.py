"""A worker that stops hands back the flow runs it took but whose process never started.

Prefect's worker proposes a flow run Pending before it starts the run's process, and no worker is
offered a Pending run again. A worker stopped in between (SIGTERM or SIGINT within ~0.2 s of a
trigger: its launcher was killed before the flow-run process began) left the run Pending in
Prefect, and its row `pending`, for good. The engine takes a run to Running before any of the
flow's code runs; so a run this worker took that Prefect still shows Pending once every process
that could have run it is gone never ran any of it, and is proposed Scheduled again, for another
worker or this one restarted. Nothing is handed back while such a process might still be running.
"""

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import anyio

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.client.schemas.responses import OrchestrationResult
    from prefect.states import State

# with the zygote's stop (up to 7 s) and the rest, within compose's stop_grace_period for workers (30 s)
HAND_BACK_SECONDS = 10.0


def handed_back_message(worker: str) -> str:
    return (
        f"handed back by worker {worker!r}, which stopped before this flow run's process "
        "started: scheduled again for the next worker"
    )


class _Client(Protocol):
    async def read_flow_run(self, flow_run_id: UUID) -> "FlowRun": ...

    async def set_flow_run_state(
        self, flow_run_id: UUID, state: "State[Any]", force: bool = False
    ) -> "OrchestrationResult[Any]": ...


async def hand_back(
    client: _Client, flow_run_ids: Iterable[UUID], *, worker: str, log: Callable[[str], None]
) -> list[UUID]:
    """Propose Scheduled for each of `flow_run_ids` that Prefect still shows Pending (a cancel
    or a crash meanwhile is left as it is); the runs handed back. Call it only once no process
    that could run them is left."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Scheduled

    handed_back = []
    for flow_run_id in sorted(flow_run_ids):
        try:
            state = (await client.read_flow_run(flow_run_id)).state
            if state is None or not state.is_pending():
                continue
            result = await client.set_flow_run_state(
                flow_run_id, Scheduled(message=handed_back_message(worker))
            )
        except Exception as exc:  # the server away: it stays Pending, as it did before
            log(f"could not hand back flow run {flow_run_id}: {exc!r}")
            continue
        if result.status == SetStateStatus.ACCEPT:
            log(f"flow run {flow_run_id} handed back (Scheduled): its process never started")
            handed_back.append(flow_run_id)
    return handed_back


def hand_back_on_stop(processes_gone: Callable[[], bool]) -> None:
    """Have Prefect's worker keep the flow runs it took (Prefect accepted its Pending) whose
    launcher has not ended, and hand back, as it stops, those whose process never started.
    `processes_gone` stops what could still run them (the zygote and the runs it forked; the
    launchers Prefect's worker has ended by then) and says whether they are all gone."""
    from prefect.client.orchestration import get_client
    from prefect.workers.base import BaseWorker

    propose_pending = BaseWorker._propose_pending_state
    submit = BaseWorker._submit_run_and_capture_errors
    leave = BaseWorker.__aexit__
    taken: dict[int, set[UUID]] = {}

    async def _propose_pending_state(self: BaseWorker, flow_run: "FlowRun") -> bool:
        with anyio.CancelScope(shield=True):  # a stop must not leave it unknown whether it took it
            accepted = await propose_pending(self, flow_run)
        if accepted:
            taken.setdefault(id(self), set()).add(flow_run.id)
        return accepted

    async def _submit_run_and_capture_errors(
        self: BaseWorker, flow_run: "FlowRun", task_status: Any = None
    ) -> Any:
        result = await submit(self, flow_run, task_status)
        # its launcher ended (or never started) and Prefect's worker saw to its state; a stop
        # cancels this instead, and the run stays taken
        taken.get(id(self), set()).discard(flow_run.id)
        return result

    async def __aexit__(self: BaseWorker, *exc_info: Any) -> None:
        try:
            await leave(self, *exc_info)  # its launchers are killed and reaped in here
        finally:
            unstarted = taken.pop(id(self), set())
            if unstarted:
                with anyio.CancelScope(shield=True):
                    await _hand_back_unstarted(self, unstarted)

    async def _hand_back_unstarted(self: BaseWorker, unstarted: set[UUID]) -> None:
        if not await anyio.to_thread.run_sync(processes_gone):
            self._logger.warning(
                "not handing back %d flow run(s) still Pending: a process that could run them "
                "may still be running",
                len(unstarted),
            )
            return
        with anyio.move_on_after(HAND_BACK_SECONDS):
            async with get_client() as client:
                await hand_back(client, unstarted, worker=self.name, log=self._logger.info)

    BaseWorker._propose_pending_state = _propose_pending_state  # type: ignore[method-assign]
    BaseWorker._submit_run_and_capture_errors = _submit_run_and_capture_errors  # type: ignore[method-assign]
    BaseWorker.__aexit__ = __aexit__  # type: ignore[method-assign]
