"""Runs this service ended whose flow run Prefect still shows unfinished a minute later: set in
Prefect to what the run's row says.

Two ways to get there: a cancel its worker stopped before finishing (the worker sets Cancelled
~3.4 s after the run's process exits; Prefect's own clean-up comes 5 min later), and a run whose
process wrote why it stopped and was killed before telling Prefect (its worker killed: the run's
SIGTERM, then a SIGKILL within ~0.2 s) — Running for good, holding a slot of the pool's limits."""

import logging
from datetime import timedelta

from prefect.client.schemas.objects import StateType
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline import orchestrator, pool
from app.pipeline.clocks import database_now

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
    database's clock (which wrote their ends)."""
    async with get_sessionmaker()() as session:
        now = await database_now(session)
        rows = await session.execute(
            select(PipelineRun.prefect_flow_run_id, PipelineRun.status).where(
                PipelineRun.status.in_(list(SETTLED_AS)),
                PipelineRun.completed_at > now - RECENTLY,
                PipelineRun.completed_at <= now - GRACE,
                PipelineRun.prefect_flow_run_id.is_not(None),
            )
        )
        return {flow_run_id: status for flow_run_id, status in rows if flow_run_id}


async def settle_ended() -> list[str]:
    """Set in Prefect the runs that ended lately whose flow run is still unfinished there, and
    has been for GRACE (on the Prefect server's clock, which stamped the state); those set."""
    ended = await ended_lately()
    if not ended:
        return []
    states = await orchestrator.read_flow_run_states(list(ended), types=UNFINISHED)
    if not states:
        return []
    prefect_now = utcnow() + await pool.prefect_clock_offset()
    settled = []
    for flow_run_id, state in states.items():
        waited = (prefect_now - state.timestamp).total_seconds()
        if waited <= GRACE.total_seconds():
            continue
        status = ended[flow_run_id]
        message = (
            f"watchdog: this service's run ended {status.value}, and its worker or process "
            f"stopped before telling Prefect ({state.name} for {waited:.0f} s)"
        )
        if await orchestrator.settle_flow_run(
            flow_run_id, SETTLED_AS[status], message, still=state.type
        ):
            logger.warning("watchdog: flow run %s %s", flow_run_id, message)
            settled.append(flow_run_id)
    return settled
