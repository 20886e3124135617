"""Pipelines and their runs: the queries and the trigger sequence the API routes call."""

import logging

from sqlalchemy import func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.selectable import ScalarSelect

from app import idempotency, withdrawal
from app.api.pipeline_out import pipeline_out
from app.api.pipeline_out import run_out as run_out  # the routes' service.run_out
from app.api.schemas import PipelineCreate, PipelineOut, PipelineStatus
from app.models import Pipeline, PipelineRun, Status
from app.pipeline import orchestrator
from app.pipeline.input_files import input_gone
from app.pipeline.input_files.inputs import CheckedInput
from app.pipeline.status import UNFINISHED, flow_run_key, new_stage_rows
from app.pipeline.store import input_file
from app.pipeline.transient import is_transient

logger = logging.getLogger(__name__)


def _latest_run_id() -> ScalarSelect[int]:
    return (
        select(func.max(PipelineRun.id))
        .where(PipelineRun.pipeline_id == Pipeline.id)
        .correlate(Pipeline)
        .scalar_subquery()
    )


def _runs_in_flight() -> ScalarSelect[int]:
    return (
        select(func.count(PipelineRun.id))
        .where(PipelineRun.pipeline_id == Pipeline.id, PipelineRun.status.in_(UNFINISHED))
        .correlate(Pipeline)
        .scalar_subquery()
    )


async def pipeline_view(
    *, session: AsyncSession, pipeline: Pipeline, run: PipelineRun | None
) -> PipelineOut:
    """The pipeline as the API shows it: with its latest run and how many of its runs are in
    flight (usually none or the latest; an older one still runs when a later one ended first)."""
    query = select(_runs_in_flight()).select_from(Pipeline).where(Pipeline.id == pipeline.id)
    return pipeline_out(pipeline, run, await session.scalar(query) or 0)


async def get_latest_run(
    *, session: AsyncSession, pipeline_id: int, unfinished: bool = False
) -> PipelineRun | None:
    """The pipeline's newest run (of those pending or running, with `unfinished`), with stages."""
    query = (
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id)
        .where(PipelineRun.status.in_(UNFINISHED) if unfinished else true())
        .order_by(PipelineRun.id.desc())
        .limit(1)
        .options(selectinload(PipelineRun.stages))
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_pipeline(*, session: AsyncSession, pipeline_id: int) -> Pipeline | None:
    return await session.get(Pipeline, pipeline_id)


async def list_pipelines(
    *, session: AsyncSession, status: PipelineStatus | None, page: int, page_size: int
) -> tuple[list[PipelineOut], int]:
    """One page of pipelines, newest first, each with its latest run and its runs in flight,
    filtered by the latest run's status."""
    query = (
        select(Pipeline, PipelineRun, _runs_in_flight())
        .outerjoin(PipelineRun, PipelineRun.id == _latest_run_id())
        .options(selectinload(PipelineRun.stages))
    )
    if status == "created":
        query = query.where(PipelineRun.id.is_(None))
    elif status is not None:
        query = query.where(PipelineRun.status == Status(status))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(
        query.order_by(Pipeline.id.desc()).offset((page - 1) * page_size).limit(page_size)
    )
    return [pipeline_out(pipeline, run, n) for pipeline, run, n in rows.tuples()], total


async def create_pipeline(
    *,
    session: AsyncSession,
    data: PipelineCreate,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    source: CheckedInput | None = None,
) -> tuple[Pipeline, bool]:
    """The new pipeline and True; or, for a key seen within the window, that pipeline and False.
    With `source`, its runs read that checked input file instead of generating records. With
    `data.trigger`, its first run is added in the same commit (see `first_run`), so a
    repeat of the request finds the run as soon as it finds the pipeline. A key seen with
    another `request_hash` (idempotency.fingerprint) raises idempotency.KeyReusedError."""
    if idempotency_key and (seen := await idempotency.find(session, Pipeline, idempotency_key)):
        return idempotency.same_request(seen, idempotency_key, request_hash), False
    pipeline = Pipeline(
        name=data.name,
        description=data.description,
        record_count=source.rows if source else data.record_count,
        input_path=str(source.path) if source else None,
        input_format=source.format if source else None,
        idempotency_key=idempotency_key,
        request_hash=request_hash if idempotency_key else None,
    )
    session.add(pipeline)
    if data.trigger:
        session.add(pending_run(pipeline))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        assert idempotency_key is not None  # the only unique column a new row can collide on
        winner = await idempotency.find(session, Pipeline, idempotency_key)
        if winner is None:
            raise
        return idempotency.same_request(winner, idempotency_key, request_hash), False
    return pipeline, True


async def first_run(
    *, session: AsyncSession, pipeline: Pipeline, trigger: bool, created: bool
) -> PipelineRun | None:
    """The run to answer a create request with: with `trigger`, the first run, started by this
    request or, for a repeat (same Idempotency-Key), by the first one."""
    if trigger and created:
        return await _launch_first_run(session=session, pipeline=pipeline)
    if trigger:
        return await _wait_for_first_run(pipeline.id)
    return await get_latest_run(session=session, pipeline_id=pipeline.id)


async def _launch_first_run(*, session: AsyncSession, pipeline: Pipeline) -> PipelineRun:
    """Create the flow run of the run `create_pipeline` added; if that fails (Prefect
    unavailable), the pipeline is removed with its run: nothing of the request is kept (or,
    with the database down for longer than the removal waits, the answer names what is)."""
    [run] = pipeline.runs  # as committed: no read between the commit and the trigger to fail
    assert run.prefect_flow_run_id is None
    return await launch(session=session, run=run, with_pipeline=True)


async def _wait_for_first_run(pipeline_id: int) -> PipelineRun | None:
    """A repeat of a create-and-trigger request: the first request's run once it has its flow
    run (None when that request did not trigger)."""

    async def look(session: AsyncSession) -> tuple[bool, PipelineRun | None]:
        if await session.get(Pipeline, pipeline_id) is None:
            raise orchestrator.PrefectUnavailableError(
                "the first request with this Idempotency-Key could not start its run "
                "(Prefect was unavailable) and kept nothing; repeat the request"
            )
        run = await get_latest_run(session=session, pipeline_id=pipeline_id)
        return run is None or run.prefect_flow_run_id is not None or run.status.is_final, run

    return await idempotency.wait_for_winner(
        look, still_busy="the first request with this Idempotency-Key is still starting its run"
    )


def pending_run(pipeline: Pipeline, key: str | None = None) -> PipelineRun:
    """A new run of `pipeline`, pending, with its stages, holding the scoped key if any."""
    return PipelineRun(
        pipeline=pipeline,
        record_count=pipeline.record_count,
        status=Status.PENDING,
        stages=new_stage_rows(),
        idempotency_key=key,
    )


async def start_run(
    *, session: AsyncSession, pipeline: Pipeline, idempotency_key: str | None = None
) -> PipelineRun:
    """Add a pending run and create its flow run; if Prefect refuses, the run row is removed
    (PrefectUnavailableError). A key seen within the window returns the run of that key; a key
    that retried the pipeline raises idempotency.KeyReusedError."""
    pipeline_id = pipeline.id  # the rollback below expires the object
    key, seen = await idempotency.run_of(
        session, pipeline_id=pipeline_id, key=idempotency_key, verb="trigger"
    )
    if seen:
        return seen
    refuse_gone_input(pipeline)
    run = pending_run(pipeline, key)
    session.add(run)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if key and (winner := await idempotency.wait_for_run(key)):
            return winner
        if await session.get(Pipeline, pipeline_id) is None:  # a DELETE won the race
            raise ConflictError(f"pipeline {pipeline_id} was deleted; no run was started") from None
        raise
    return await launch(session=session, run=run)


async def launch(
    *, session: AsyncSession, run: PipelineRun, with_pipeline: bool = False
) -> PipelineRun:
    """Create the committed pending run's flow run; if that fails, the run's rows are removed
    (`with_pipeline`: its pipeline's too) and the error raised, unless a flow run claimed the
    run meanwhile (Prefect made it before its client gave up): then it is kept and answered.
    A database down for longer than the removal waits: withdrawal.RunKeptError, naming them."""
    run_id, pipeline_id = run.id, run.pipeline_id
    keyed = run.idempotency_key is not None or (
        with_pipeline and run.pipeline.idempotency_key is not None
    )
    made = withdrawal.Made(run_id, pipeline_id, with_pipeline, keyed)
    try:
        # no connection held while Prefect answers (up to PIPELINE_PREFECT_REQUEST_SECONDS) or
        # the withdrawal takes one
        await session.commit()
        flow_run = await orchestrator.trigger_run(
            pipeline_id=pipeline_id,
            run_id=run_id,
            record_count=run.record_count,
            key=flow_run_key(run_id, run.created_at),
        )
    except BaseException as exc:
        try:
            withdrawn = await withdrawal.withdraw(made)
        except Exception as db_error:
            if not is_transient(db_error):
                raise
            raise withdrawal.not_withdrawn(exc, db_error, made) from db_error
        if withdrawn and isinstance(exc, orchestrator.PrefectTimedOutError):
            raise exc.withdrawn() from None  # what Prefect may still do with it: nothing runs
        if withdrawn or not isinstance(exc, Exception):
            raise
        logger.warning("run %d: its trigger failed (%s), but a flow run took it: kept", run_id, exc)
    else:
        try:
            run.prefect_flow_run_id = str(flow_run.id)
            await session.commit()
            return await _fresh(session, run_id)
        except Exception as db_error:  # its flow run claims the row all the same
            if not is_transient(db_error):
                raise
            raise withdrawal.not_recorded(str(flow_run.id), db_error, made) from db_error
    return await _fresh(session, run_id)


async def _fresh(session: AsyncSession, run_id: int) -> PipelineRun:
    """The run as it is now, stages and all: a cancel may have ended it meanwhile."""
    query = (
        select(PipelineRun)
        .where(PipelineRun.id == run_id)
        .options(selectinload(PipelineRun.stages))
    )
    return (await session.execute(query.execution_options(populate_existing=True))).scalar_one()


class ConflictError(RuntimeError):
    """The request does not fit the pipeline's current state (answered with 409)."""


def refuse_gone_input(pipeline: Pipeline) -> None:
    """A run of a pipeline whose input file is gone would fail at its first stage: a 409 saying
    so, and what to do, instead of a 202 and a failed run (a file removed later fails the run)."""
    if pipeline.input_path and (gone := input_gone.gone(input_file(pipeline.input_path))):
        raise ConflictError(f"pipeline {pipeline.id} cannot run: {gone}")


async def list_runs(
    *, session: AsyncSession, pipeline_id: int, page: int, page_size: int
) -> tuple[list[PipelineRun], int]:
    """The pipeline's runs, newest first, each with its stages."""
    total = (
        await session.execute(select(func.count()).where(PipelineRun.pipeline_id == pipeline_id))
    ).scalar_one()
    rows = await session.execute(
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id)
        .order_by(PipelineRun.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
        .options(selectinload(PipelineRun.stages))
    )
    return list(rows.scalars()), total
