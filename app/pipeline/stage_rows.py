"""A run's stage rows: a stage's new status with its timing, and what the stages still pending
or running become when their run ends (update_pipeline_status, app/pipeline/status.py)."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import FINAL_STATUSES, PipelineStage, Status

UNFINISHED = (Status.PENDING, Status.RUNNING)
INTERRUPTED = "interrupted: the run failed while this stage ran (see the run's error)"


def elapsed(started_at: datetime | None, ended_at: datetime) -> float | None:
    return (ended_at - started_at).total_seconds() if started_at else None


def set_stage_status(
    stage: PipelineStage, status: Status, now: datetime, message: str | None, error: str | None
) -> None:
    if status == Status.RUNNING:
        if stage.status != Status.RUNNING:
            stage.started_at = now
        stage.completed_at = stage.duration_seconds = None
    elif status in FINAL_STATUSES:
        stage.completed_at = now
        stage.duration_seconds = elapsed(stage.started_at, now)
    stage.status = status
    stage.message = message
    stage.error = error


async def close_unfinished_stages(
    session: AsyncSession, run_id: int, run_status: Status, now: datetime, error: str | None
) -> None:
    """Stages still pending or running when their run ends are cancelled, never left dangling;
    one still running when its run failed (its process died: the watchdog's verdict) failed,
    with the run's `error` when that is a stop (the stage is where it came). One that was
    running gets its duration, up to its run's end."""
    from app.pipeline.stops import STOPPED_WITHOUT_CANCEL  # here: a cycle through status

    reason = {
        Status.FAILED: "not run: an earlier stage failed",
        Status.CANCELLED: "cancelled",
        Status.COMPLETED: "not run",
    }[run_status]
    running = await session.execute(
        select(PipelineStage).where(
            PipelineStage.run_id == run_id, PipelineStage.status == Status.RUNNING
        )
    )
    for stage in running.scalars():  # a stage that ran has a duration, however its run ended
        if run_status == Status.FAILED and error == STOPPED_WITHOUT_CANCEL:
            set_stage_status(stage, Status.FAILED, now, None, error)
        elif run_status == Status.FAILED:
            set_stage_status(stage, Status.FAILED, now, INTERRUPTED, None)
        else:
            set_stage_status(stage, Status.CANCELLED, now, reason, None)
    if run_status == Status.FAILED and not await session.scalar(
        select(PipelineStage.id).where(  # stopped between stages, or before the first
            PipelineStage.run_id == run_id, PipelineStage.status == Status.FAILED
        )
    ):
        reason = "not run: the run failed before it began"
    await session.execute(  # the rest never started; the ones above are flushed first
        update(PipelineStage)
        .where(PipelineStage.run_id == run_id, PipelineStage.status.in_(UNFINISHED))
        .values(status=Status.CANCELLED, completed_at=now, message=reason)
        .execution_options(synchronize_session=False)
    )
