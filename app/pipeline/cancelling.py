"""Runs this service ended cancelled whose flow run Prefect still shows Cancelling: the worker
stopped before it could finish the cancel (it sets Cancelled ~3.4 s after the run's process
exits), and Prefect's own cancellation clean-up comes only 5 min later."""

import logging
from datetime import timedelta

from prefect.client.schemas.objects import StateType
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline import orchestrator, pool
from app.pipeline.clocks import database_now

logger = logging.getLogger(__name__)

# cancelled longer ago than this, Prefect's clean-up has settled them itself
RECENTLY = timedelta(minutes=10)
# A live worker gives the run's process 30 s after its SIGTERM before a SIGKILL, then sets
# Cancelled: Cancelling for longer than this, no worker is left to finish it.
GRACE = timedelta(seconds=60)


async def recently_cancelled() -> list[str]:
    """The flow runs of runs that ended cancelled within RECENTLY, by the database's clock."""
    async with get_sessionmaker()() as session:
        since = await database_now(session) - RECENTLY
        flow_run_ids = await session.scalars(
            select(PipelineRun.prefect_flow_run_id).where(
                PipelineRun.status == Status.CANCELLED,
                PipelineRun.completed_at >= since,
                PipelineRun.prefect_flow_run_id.is_not(None),
            )
        )
        return [flow_run_id for flow_run_id in flow_run_ids if flow_run_id]


async def finish_cancels() -> list[str]:
    """Set Cancelled in Prefect the recently cancelled runs still Cancelling past GRACE (on the
    Prefect server's clock, which stamped the state); the flow runs it finished."""
    flow_run_ids = await recently_cancelled()
    if not flow_run_ids:
        return []
    states = await orchestrator.read_flow_run_states(flow_run_ids)
    cancelling = {i: s for i, s in states.items() if s.type == StateType.CANCELLING}
    if not cancelling:
        return []
    prefect_now = utcnow() + await pool.prefect_clock_offset()
    finished = []
    for flow_run_id, state in cancelling.items():
        waited = (prefect_now - state.timestamp).total_seconds()
        if waited <= GRACE.total_seconds():
            continue
        message = (
            f"watchdog: its worker stopped before finishing the cancel (Cancelling for "
            f"{waited:.0f} s); cancelled"
        )
        if await orchestrator.finish_cancel(flow_run_id, message):
            logger.warning("watchdog: flow run %s %s", flow_run_id, message)
            finished.append(flow_run_id)
    return finished
