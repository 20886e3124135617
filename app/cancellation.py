"""Cancelling a pipeline: each of its runs still pending or running, in Prefect and in our rows.

Usually that is one run, the latest; but a run triggered while another ran can end first, and
the older one must still be reachable (DELETE refuses while it runs and sends the user here).
"""

from prefect.client.schemas.objects import StateType
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, Status
from app.pipeline import orchestrator
from app.pipeline.status import UNFINISHED, give_cancel_reason, update_pipeline_status
from app.service import ConflictError, get_latest_run

CANCELLED_THROUGH_THE_API = "cancelled through the API"


async def cancel_runs(*, session: AsyncSession, pipeline: Pipeline) -> PipelineRun:
    """Cancel the pipeline's unfinished runs and answer with the newest of them; idempotent:
    with none left, the run that ended last is the answer again if it was cancelled."""
    pipeline_id = pipeline.id
    rows = await session.execute(
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id, PipelineRun.status.in_(UNFINISHED))
        .order_by(PipelineRun.id)  # oldest first: the newest ends last, as a repeat expects
    )
    unfinished = [(run.id, run.prefect_flow_run_id) for run in rows.scalars()]
    if not unfinished:
        return await _nothing_to_cancel(session, pipeline_id)
    cancelled, ended = [], []
    for run_id, flow_run_id in unfinished:
        try:
            await _cancel(pipeline_id, run_id, flow_run_id)
            cancelled.append(run_id)
        except ConflictError as exc:  # it ended in Prefect meanwhile: its own status follows
            ended.append(exc)
    if not cancelled:
        raise ended[-1]  # the newest
    session.expire_all()  # the cancels were written by other sessions
    query = select(PipelineRun).where(PipelineRun.id == cancelled[-1])
    return (await session.execute(query.options(selectinload(PipelineRun.stages)))).scalar_one()


async def _nothing_to_cancel(session: AsyncSession, pipeline_id: int) -> PipelineRun:
    latest = await get_latest_run(session=session, pipeline_id=pipeline_id)
    if latest is None:
        raise ConflictError(f"pipeline {pipeline_id} has no run to cancel")
    last_ended = (  # the latest run, unless an older one was cancelled after it ended
        await session.execute(
            select(PipelineRun)
            .where(PipelineRun.pipeline_id == pipeline_id)
            .order_by(PipelineRun.completed_at.desc().nulls_last(), PipelineRun.id.desc())
            .limit(1)
            .options(selectinload(PipelineRun.stages))
        )
    ).scalar_one()
    if last_ended.status == Status.CANCELLED:
        return last_ended
    raise ConflictError(
        f"run {latest.id} of pipeline {pipeline_id} already {latest.status.value}; "
        "only a pending or running run can be cancelled"
    )


async def _cancel(pipeline_id: int, run_id: int, flow_run_id: str | None) -> None:
    if flow_run_id:
        before = await orchestrator.cancel_flow_run(flow_run_id)
        if before in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED):
            raise ConflictError(
                f"run {run_id} of pipeline {pipeline_id} already ended in Prefect "
                f"({before.value.lower()}); its status here follows shortly"
            )
    reason = CANCELLED_THROUGH_THE_API
    if not await update_pipeline_status(pipeline_id, None, Status.CANCELLED, reason, run_id=run_id):
        # the flow-run process, stopped by this cancel, wrote its own "cancelled" first
        await give_cancel_reason(run_id=run_id, reason=reason)
        async with get_sessionmaker()() as session:
            ended = await session.scalar(select(PipelineRun.status).where(PipelineRun.id == run_id))
        if ended != Status.CANCELLED:  # or it ended otherwise first (its worker stopped: failed)
            shown = ended.value if ended else "deleted"
            raise ConflictError(
                f"run {run_id} of pipeline {pipeline_id} already {shown}; only a pending or "
                "running run can be cancelled"
            )
