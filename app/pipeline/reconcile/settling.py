"""Runs this service ended whose flow run Prefect still shows unfinished a minute later: set in
Prefect to what the run's row says.

Two ways to get there: a cancel its worker stopped before finishing (the worker sets Cancelled
~3.4 s after the run's process exits; Prefect's own clean-up comes 5 min later), and a run whose
process wrote why it stopped and was killed before telling Prefect (its worker killed: the run's
SIGTERM, then a SIGKILL within ~0.2 s) — Running for good, holding a slot of the pool's limits.

And one run Prefect ended otherwise: a cancel whose worker stopped at once, its process ending
Crashed ("Execution was cancelled by the runtime environment.") — the user asked to cancel and
the run stopped, so Prefect is told Cancelled, past its rules, which keep a final state."""

import logging
from datetime import timedelta

from prefect.client.schemas.objects import State, StateType
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline import orchestrator, pool
from app.pipeline.clocks import database_now
from app.pipeline.reconcile import flow_run_fixes
from app.pipeline.reconcile.isolated import Isolated

logger = logging.getLogger(__name__)

# ended longer ago than this, earlier passes have settled them
RECENTLY = timedelta(minutes=5)
# A live worker gives the run's process 30 s after its SIGTERM before a SIGKILL, then sets
# Cancelled; a process that wrote its row reports to Prefect within a second or two. Unfinished
# in Prefect for longer than this after the row ended, nothing is left to finish it.
GRACE = timedelta(seconds=60)
UNFINISHED = [
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.CANCELLING,
    StateType.PAUSED,
]
# what Prefect is told, by the row's status
SETTLED_AS = {
    Status.CANCELLED: StateType.CANCELLED,
    Status.FAILED: StateType.CRASHED,
    Status.COMPLETED: StateType.COMPLETED,
}


async def ended_lately() -> dict[str, Status]:
    """Flow run → final status, of the runs that ended between RECENTLY and GRACE ago, by the
    database's clock (which wrote their ends). Read by their end alone, through its index: with
    the status in the query too, SQLite goes through the status index, every finished run."""
    async with get_sessionmaker()() as session:
        now = await database_now(session)
        rows = await session.execute(
            select(PipelineRun.prefect_flow_run_id, PipelineRun.status).where(
                PipelineRun.completed_at > now - RECENTLY,
                PipelineRun.completed_at <= now - GRACE,
                PipelineRun.prefect_flow_run_id.is_not(None),
            )
        )
        return {
            flow_run_id: status
            for flow_run_id, status in rows
            if flow_run_id and status in SETTLED_AS
        }


# one flow run's error is that flow run's: logged once, the pass goes on with the others
_settling = Isolated(logger, "settling flow run")


async def settle_ended() -> list[str]:
    """Set in Prefect the runs that ended lately whose flow run is still unfinished there, or
    Crashed where the run was cancelled, and has been for GRACE (on the Prefect server's clock,
    which stamped the state); those set. One read of Prefect, none with no run ended lately."""
    ended = await ended_lately()
    _settling.keep_only(ended)
    if not ended:
        return []
    cancelled = Status.CANCELLED in ended.values()
    types = [*UNFINISHED, StateType.CRASHED] if cancelled else UNFINISHED
    states = await orchestrator.read_flow_run_states(list(ended), types=types)
    if not states:
        return []
    prefect_now = utcnow() + await pool.prefect_clock_offset()
    settled = []
    for flow_run_id, state in states.items():
        status = ended[flow_run_id]
        crashed = state.type == StateType.CRASHED
        waited = (prefect_now - state.timestamp).total_seconds()
        if (crashed and status != Status.CANCELLED) or waited <= GRACE.total_seconds():
            continue
        with _settling.each(flow_run_id):
            if await _settle(flow_run_id, state, status, waited=waited, crashed=crashed):
                settled.append(flow_run_id)
    return settled


async def _settle(
    flow_run_id: str, state: State, status: Status, *, waited: float, crashed: bool
) -> bool:
    """Tell Prefect what the run's row says, and why; whether it was set."""
    if crashed:  # Crashed is final: only a forced state replaces it
        message = (
            "watchdog: this service's run was cancelled, and its worker stopped as it stopped the "
            f"run's process, which ended Crashed ({state.message or 'no message'})"
        )
    else:
        message = (
            f"watchdog: this service's run ended {status.value}, and its worker or process "
            f"stopped before telling Prefect ({state.name} for {waited:.0f} s)"
        )
    if not await flow_run_fixes.settle_flow_run(
        flow_run_id, SETTLED_AS[status], message, still=state.type, force=crashed
    ):
        return False
    # the message, as Prefect shows it, begins "watchdog: "; the log line says whose flow run
    logger.warning(
        "watchdog: flow run %s set %s: %s",
        flow_run_id,
        SETTLED_AS[status].value,
        message.removeprefix("watchdog: "),
    )
    return True
