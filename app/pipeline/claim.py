"""claim_run: which run row a flow run executes, and whether it may start at all; and
withdraw_unclaimed, the trigger's side of that race."""

import functools
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db import get_sessionmaker, lock_for_write
from app.models import FINAL_STATUSES, Pipeline, PipelineRun, PipelineStage, Status
from app.pipeline.status import flow_run_key, new_stage_rows
from app.pipeline.transient import retried

NEVER_STARTED = (Status.PENDING, Status.CANCELLED)  # a cancel can come before any flow run


class PipelineNotFoundError(LookupError):
    """The flow was started for a pipeline id the database does not know."""


class RunCancelledError(RuntimeError):
    """The run may not start: cancelled before its flow run claimed it (a cancel that raced the
    trigger), already ended (failed by the watchdog, say), or withdrawn by its trigger."""


class RunSettledError(RunCancelledError):
    """Already ended, and counted by whoever ended it, or withdrawn, never a run to the user: the
    flow run starts nothing and counts nothing."""


class PipelineDeletedError(RunSettledError):
    """A run of a schedule whose pipeline was deleted (its schedule with it) after Prefect made
    the run: it starts nothing and ends Cancelled, as a run of a removed schedule does."""


@dataclass(frozen=True)
class RunRef:
    """Identifies the run a flow-run process is executing."""

    pipeline_id: int
    run_id: int
    record_count: int
    input_path: str | None = None  # the pipeline's input file, instead of generated records
    input_format: str | None = None


async def claim_run(
    *,
    pipeline_id: int,
    flow_run_id: str,
    run_id: int | None,
    record_count: int,
    key: str | None = None,
    scheduled: bool = False,
) -> RunRef:
    """Find (or, for runs of a schedule, create) the run this flow run executes.

    A flow run retried by Prefect finds its run again and starts its stages afresh. A run
    already ended (cancelled, failed by the watchdog) is never moved back, and a run whose row is
    gone (its trigger answered 503 and withdrew it) is not made again: RunCancelledError, nothing
    of it starts. So is a `scheduled` run (made by a schedule) of a pipeline deleted meanwhile.
    A database that does not answer is waited for (app/pipeline/transient.py).
    """

    once = functools.partial(
        _claim,
        pipeline_id=pipeline_id,
        flow_run_id=flow_run_id,
        run_id=run_id,
        record_count=record_count,
        key=key,
        scheduled=scheduled,
    )

    async def claim() -> RunRef:
        try:
            return await once()
        except IntegrityError:
            if run_id is not None:
                raise
            # PostgreSQL: the watchdog made this flow run's row (unclaimed.py) as this claim made
            # its own; that row is committed now, and is this flow run's to claim
            return await once()

    return await retried(claim, what=f"the claim of flow run {flow_run_id}")


async def _claim(
    *,
    pipeline_id: int,
    flow_run_id: str,
    run_id: int | None,
    record_count: int,
    key: str | None,
    scheduled: bool,
) -> RunRef:
    async with get_sessionmaker()() as session, session.begin():
        await lock_for_write(session)
        pipeline = await session.get(Pipeline, pipeline_id)
        run = await _find_run(session, pipeline_id, flow_run_id, run_id) if pipeline else None
        if run is None and run_id is not None:  # a create-and-trigger withdraws its pipeline too
            raise RunSettledError(
                f"run {run_id} does not exist: its trigger failed and withdrew it; "
                "trigger the pipeline again"
            )
        if pipeline is None and scheduled:
            raise PipelineDeletedError(
                f"skipped: pipeline {pipeline_id} was deleted, with its schedule, before this "
                "run started"
            )
        if pipeline is None:
            raise PipelineNotFoundError(f"pipeline {pipeline_id} does not exist")
        if run is None:
            run = PipelineRun(
                pipeline_id=pipeline_id,
                record_count=record_count,
                status=Status.PENDING,
                stages=new_stage_rows(),
            )
            session.add(run)
        if run.prefect_flow_run_id not in (None, flow_run_id):
            raise _not_its_own(flow_run_id, run, f"its flow run is {run.prefect_flow_run_id}")
        if (
            key
            and "@" in key
            and run_id is not None
            and key != flow_run_key(run.id, run.created_at)
        ):
            # made for another database's run of this id (a trigger's key since 3f9b2d7e1c64's
            # release; an older one is the tag alone and cannot tell)
            raise _not_its_own(flow_run_id, run, f"it was made as {key}")
        if run.status == Status.CANCELLED:
            raise RunCancelledError(
                f"run {run.id} was cancelled before its flow run started ({run.error})"
            )
        if run.status in FINAL_STATUSES:
            raise RunSettledError(
                f"run {run.id} already ended {run.status} ({run.error}); it does not start "
                "again: trigger the pipeline for a new run"
            )
        run.prefect_flow_run_id = flow_run_id
        run.status, run.error, run.completed_at, run.duration_seconds = (
            Status.PENDING,
            None,
            None,
            None,
        )
        for stage in run.stages:
            stage.status, stage.error, stage.message, stage.attempts = Status.PENDING, None, None, 0
            stage.started_at = stage.completed_at = stage.duration_seconds = None
            stage.records_in = stage.records_out = stage.records_rejected = None
        await session.flush()
        return RunRef(
            pipeline_id=pipeline_id,
            run_id=run.id,
            record_count=run.record_count,
            input_path=pipeline.input_path,
            input_format=pipeline.input_format,
        )


async def withdraw_unclaimed(run_id: int, pipeline_id: int | None) -> bool:
    """The trigger's side of the claim: remove a run whose trigger failed (and `pipeline_id`, its
    pipeline made with it), unless a flow run claimed it meanwhile (Prefect made the flow run
    before its client gave up): True when removed, or gone already (an attempt before whose
    commit landed and whose answer was lost). Whichever of the two locks the run first wins.
    """
    async with get_sessionmaker()() as session, session.begin():
        await lock_for_write(session)
        found = await session.execute(
            select(PipelineRun.prefect_flow_run_id, PipelineRun.status)
            .where(PipelineRun.id == run_id)
            .with_for_update()
        )
        if (row := found.one_or_none()) is None:
            return True
        if row.prefect_flow_run_id is not None or row.status not in NEVER_STARTED:
            return False  # claimed: a flow run runs it
        await session.execute(delete(PipelineStage).where(PipelineStage.run_id == run_id))
        await session.execute(delete(PipelineRun).where(PipelineRun.id == run_id))
        if pipeline_id is not None:
            await session.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))
    return True


async def _find_run(
    session: AsyncSession, pipeline_id: int, flow_run_id: str, run_id: int | None
) -> PipelineRun | None:
    query = (
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id)
        .options(selectinload(PipelineRun.stages))
    )
    if run_id is not None:
        query = query.where(PipelineRun.id == run_id)
    else:
        query = query.where(PipelineRun.prefect_flow_run_id == flow_run_id)
    return (await session.execute(query.with_for_update())).scalar_one_or_none()


def _not_its_own(flow_run_id: str, run: PipelineRun, why: str) -> RunSettledError:
    return RunSettledError(
        f"flow run {flow_run_id} is not run {run.id}'s ({why}): a run {run.id} of another "
        "database on this Prefect server, or a copy; it starts nothing"
    )
