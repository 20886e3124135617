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
from app.pipeline.stage_rows import (
    UNFINISHED,
    close_unfinished_stages,
    elapsed,
    set_stage_status,
)
from app.pipeline.transient import retried

RUN_TAG_PREFIX = "pipeline-run:"
# what a flow-run process stopped by Prefect writes; the API's own reason replaces it (see below)
CANCELLED_IN_PREFECT = "cancelled: Prefect stopped the flow run (through the API or the Prefect UI)"


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
    ends before its stages' recorded moments (a clock that differs, a write that waited). A
    database that does not answer is waited for (app/pipeline/transient.py).
    """
    ended: list[tuple[str, float | None]] = []  # the final status this write moved it to
    ends_as = _end_written(stage_name, status, error, message, retrying)
    attempts = 0
    # Its moments are the database's clock's, whichever machine writes: the watchdog compares
    # started_at and heartbeat_at with that clock, and a run's moments with each other.

    async def write() -> bool:
        nonlocal attempts
        attempts += 1
        ended.clear()  # an attempt cut off by the database going away counted nothing
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
                if attempts > 1 and ends_as == (run.status, run.error):
                    # an earlier attempt's commit landed, its answer lost in the outage: the
                    # end is this write's, counted once
                    ended.append((run.status.value, run.duration_seconds))
                    return True
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
                reason, final = error or message, status
                if status == Status.COMPLETED and (unfinished := await _unfinished(session, run)):
                    # completed only with its five stages: never a "completed" run whose data
                    # was not all made (as the watchdog judges a run Prefect says completed)
                    final = Status.FAILED
                    reason = f"ended as completed while stages {unfinished} had not finished"
                await _set_run_status(
                    session, run, final, now, f"{reason}; {retrying}" if retrying else reason
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
            set_stage_status(stage, status, now, message, error)
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

    what = f"run {run_id}'s {stage_name or 'run'} status {status.value}"
    if wrote := await retried(write, what=what):
        for final, seconds in ended:  # committed: counted here, once, whoever ended it
            telemetry.run_ended(final, seconds=seconds)
    return wrote


async def _unfinished(session: AsyncSession, run: PipelineRun) -> list[str]:
    """The names of the run's stages not completed, in their order."""
    names = await session.scalars(
        select(PipelineStage.name)
        .where(PipelineStage.run_id == run.id, PipelineStage.status != Status.COMPLETED)
        .order_by(PipelineStage.position)
    )
    return list(names)


def _end_written(
    stage_name: str | None,
    status: Status,
    error: str | None,
    message: str | None,
    retrying: str | None,
) -> tuple[Status, str | None] | None:
    """The final status and error a write leaves its run with, if it ends the run (as
    update_pipeline_status writes them)."""
    if stage_name is None and status in FINAL_STATUSES:
        reason = error or message
        written = f"{reason}; {retrying}" if retrying else reason
        return status, None if status == Status.COMPLETED else written
    if stage_name is not None and status == Status.FAILED and not retrying:
        return Status.FAILED, f"{stage_name}: {error}"
    return None


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

    async def beat() -> None:
        async with get_sessionmaker()() as session, session.begin():
            await session.execute(
                update(PipelineRun)
                .where(PipelineRun.id == run_id, PipelineRun.status.in_(UNFINISHED))
                .values(heartbeat_at=await database_now(session))
            )

    await retried(beat, what=f"run {run_id}'s heartbeat")


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
        run.duration_seconds = elapsed(run.started_at, now)
        run.error = error if status != Status.COMPLETED else None
        await close_unfinished_stages(session, run.id, status, now, run.error)
