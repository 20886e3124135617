"""update_pipeline_status: how a flow run writes its run and stage rows, straight to the database."""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_sessionmaker, lock_for_write
from app.models import (
    FINAL_STATUSES,
    STAGE_NAMES,
    PipelineRun,
    PipelineStage,
    Status,
)
from app.pipeline import telemetry
from app.pipeline.clocks import database_now

RUN_TAG_PREFIX = "pipeline-run:"
# what a flow-run process stopped by Prefect writes; the API's own reason replaces it (see below)
CANCELLED_IN_PREFECT = "cancelled: Prefect stopped the flow run (through the API or the Prefect UI)"
UNFINISHED = (Status.PENDING, Status.RUNNING)
INTERRUPTED = "interrupted: the run failed while this stage ran (see the run's error)"


def run_tag(run_id: int) -> str:
    """The flow-run tag that tells the flow which run row is its own."""
    return f"{RUN_TAG_PREFIX}{run_id}"


def flow_run_key(run_id: int, created_at: datetime) -> str:
    """The idempotency key of a run's flow run. Not the tag alone: a new database starts its run
    ids at 1 again, and Prefect would answer run 1's trigger with the flow run of another
    database's run 1 on the same server."""
    return f"{run_tag(run_id)}@{created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def run_id_from_tags(tags: list[str]) -> int | None:
    for tag in tags:
        if tag.startswith(RUN_TAG_PREFIX) and tag.removeprefix(RUN_TAG_PREFIX).isdigit():
            return int(tag.removeprefix(RUN_TAG_PREFIX))
    return None


def new_stage_rows() -> list[PipelineStage]:
    return [
        PipelineStage(name=name, position=position, status=Status.PENDING, attempts=0)
        for position, name in enumerate(STAGE_NAMES)
    ]


def _elapsed(started_at: datetime | None, ended_at: datetime) -> float | None:
    return (ended_at - started_at).total_seconds() if started_at else None


async def update_pipeline_status(
    pipeline_id: int,
    stage_name: str | None,
    status: Status,
    message: str | None = None,
    *,
    run_id: int,
    records_in: int | None = None,
    records_out: int | None = None,
    records_rejected: int | None = None,
    error: str | None = None,
    input_file: str | None = None,
    output_file: str | None = None,
    attempt: int | None = None,
    retrying: str | None = None,
    ended_at: datetime | None = None,
) -> bool:
    """Record a stage's (or, with stage_name None, the whole run's) new status, timing and counts.

    A run already in a final state (completed, failed, cancelled) is never moved back: False
    then, True when the write was made. A stage that fails fails its run, unless Prefect will
    run the flow again (`retrying` says when): the run is pending until then, with the error.
    `ended_at` dates a final status the watchdog found later than it happened. A run never
    ends before its stages' recorded moments (a clock that differs, a write that waited).
    """
    ended: list[tuple[str, float | None]] = []  # the final status this write moved it to
    # Its moments are the database's clock's, whichever machine writes: the watchdog compares
    # started_at and heartbeat_at with that clock, and a run's moments with each other.

    async def write() -> bool:
        async with get_sessionmaker()() as session, session.begin():
            await lock_for_write(session)
            run = (
                await session.execute(
                    select(PipelineRun)
                    .where(PipelineRun.id == run_id, PipelineRun.pipeline_id == pipeline_id)
                    .with_for_update()
                )
            ).scalar_one()
            if run.status in FINAL_STATUSES:
                return False
            # once the lock is held: a write that waited for it must not date itself before the
            # writes made meanwhile (a stage that started while a cancel waited)
            now = await database_now(session)
            if stage_name is None and status in FINAL_STATUSES:
                when = min(ended_at, now) if ended_at else now
                now = await _no_earlier_than_its_stages(session, run, when)
            if input_file is not None:
                run.input_file = input_file
            if output_file is not None:
                run.output_file = output_file
            if stage_name is None:
                if retrying and run.status == Status.PENDING and run.error:
                    return False  # its failed stage has said why, and that Prefect runs it again
                reason = error or message
                await _set_run_status(
                    session, run, status, now, f"{reason}; {retrying}" if retrying else reason
                )
                if records_out is not None:
                    run.records_processed = records_out
                ended.extend(
                    [(run.status.value, run.duration_seconds)] if run.status.is_final else []
                )
                return True
            stage = (
                await session.execute(
                    select(PipelineStage).where(
                        PipelineStage.run_id == run_id, PipelineStage.name == stage_name
                    )
                )
            ).scalar_one()
            if status == Status.FAILED and not retrying:  # it ends the run as well
                now = await _no_earlier_than_its_stages(session, run, now)
            _set_stage_status(stage, status, now, message, error)
            if attempt is not None:
                stage.attempts = attempt
            for field, value in (
                ("records_in", records_in),
                ("records_out", records_out),
                ("records_rejected", records_rejected),
            ):
                if value is not None:
                    setattr(stage, field, value)
            if status == Status.RUNNING and run.status == Status.PENDING:
                await _set_run_status(session, run, Status.RUNNING, now, None)
            elif status == Status.FAILED:
                await _set_run_status(
                    session,
                    run,
                    Status.PENDING if retrying else Status.FAILED,
                    now,
                    f"{stage_name}: {error}" + (f"; {retrying}" if retrying else ""),
                )
                ended.extend(
                    [(run.status.value, run.duration_seconds)] if run.status.is_final else []
                )
        return True

    if wrote := await write():
        for final, seconds in ended:  # committed: counted here, once, whoever ended it
            telemetry.run_ended(final, seconds=seconds)
    return wrote


async def give_cancel_reason(*, run_id: int, reason: str) -> None:
    """The API cancelled this run: its reason replaces the generic one that the flow-run process,
    stopped by that very cancel, may have written first."""
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(
            update(PipelineRun)
            .where(
                PipelineRun.id == run_id,
                PipelineRun.status == Status.CANCELLED,
                PipelineRun.error == CANCELLED_IN_PREFECT,
            )
            .values(error=reason)
        )


async def adopt_flow_run(*, run_id: int, flow_run_id: str) -> bool:
    """Record the flow run Prefect created for a run whose trigger never wrote it back (the API
    process stopped mid-request); a run that already has one keeps it."""
    async with get_sessionmaker()() as session, session.begin():
        result = await session.execute(
            update(PipelineRun)
            .where(PipelineRun.id == run_id, PipelineRun.prefect_flow_run_id.is_(None))
            .values(prefect_flow_run_id=flow_run_id)
        )
    return bool(getattr(result, "rowcount", 0))


async def heartbeat(*, run_id: int) -> None:
    """Record that the flow-run process of this run is alive (the watchdog looks at this)."""
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(
            update(PipelineRun)
            .where(PipelineRun.id == run_id, PipelineRun.status.in_(UNFINISHED))
            .values(heartbeat_at=await database_now(session))
        )


async def keep_beating(
    *, run_id: int, every: float, log: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    """Tell the watchdog the flow-run process is alive, until cancelled. The first beat is one
    interval in: until then the run's start (started_at, set by its first stage) is the sign of
    life, and a run shorter than that — most are — needs no beat, nor a second connection."""
    while True:
        await asyncio.sleep(every)
        try:
            await heartbeat(run_id=run_id)
        except Exception as exc:  # a missed beat must never fail the run
            log.warning("heartbeat for run %d failed: %s", run_id, exc)


async def _no_earlier_than_its_stages(
    session: AsyncSession, run: PipelineRun, ended_at: datetime
) -> datetime:
    """`ended_at`, or the run's last recorded moment when that is later: a stage started after
    the last heartbeat (or a clock that differs) must not end before it began."""
    moments = (
        await session.execute(
            select(func.max(PipelineStage.started_at), func.max(PipelineStage.completed_at)).where(
                PipelineStage.run_id == run.id
            )
        )
    ).one()
    return max(t for t in (ended_at, run.started_at, *moments) if t is not None)


def _set_stage_status(
    stage: PipelineStage, status: Status, now: datetime, message: str | None, error: str | None
) -> None:
    if status == Status.RUNNING:
        if stage.status != Status.RUNNING:
            stage.started_at = now
        stage.completed_at = stage.duration_seconds = None
    elif status in FINAL_STATUSES:
        stage.completed_at = now
        stage.duration_seconds = _elapsed(stage.started_at, now)
    stage.status = status
    stage.message = message
    stage.error = error


async def _set_run_status(
    session: AsyncSession, run: PipelineRun, status: Status, now: datetime, error: str | None
) -> None:
    run.status = status
    if status == Status.RUNNING:
        run.started_at = run.started_at or now
        return
    if status == Status.PENDING:  # a failed attempt Prefect will run again: why it waits
        run.error = error
        return
    if status in FINAL_STATUSES:
        run.completed_at = now
        run.duration_seconds = _elapsed(run.started_at, now)
        run.error = error if status != Status.COMPLETED else None
        await close_unfinished_stages(session, run.id, status, now, run.error)


async def close_unfinished_stages(
    session: AsyncSession, run_id: int, run_status: Status, now: datetime, error: str | None
) -> None:
    """Stages still pending or running when their run ends are cancelled, never left dangling;
    one still running when its run failed (its process died: the watchdog's verdict) failed,
    with the run's `error` when that is a stop (the stage is where it came). One that was
    running gets its duration, up to its run's end."""
    from app.pipeline.stops import STOPPED_WITHOUT_CANCEL  # here: stops imports this module

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
            _set_stage_status(stage, Status.FAILED, now, None, error)
        elif run_status == Status.FAILED:
            _set_stage_status(stage, Status.FAILED, now, INTERRUPTED, None)
        else:
            _set_stage_status(stage, Status.CANCELLED, now, reason, None)
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
