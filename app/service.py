"""Pipelines and their runs: the queries and the trigger sequence the API routes call."""

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.selectable import ScalarSelect

from app.api.schemas import PipelineCreate, PipelineOut, PipelineStatus, RunOut
from app.models import Pipeline, PipelineRun, PipelineStage, Status
from app.pipeline import orchestrator
from app.pipeline.status import new_stage_rows


def _latest_run_id() -> ScalarSelect[int]:
    return (
        select(func.max(PipelineRun.id))
        .where(PipelineRun.pipeline_id == Pipeline.id)
        .correlate(Pipeline)
        .scalar_subquery()
    )


def run_out(run: PipelineRun) -> RunOut:
    out = RunOut.model_validate(run)
    if run.prefect_flow_run_id:
        out.prefect_flow_run_url = orchestrator.flow_run_url(run.prefect_flow_run_id)
    return out


def pipeline_out(pipeline: Pipeline, run: PipelineRun | None) -> PipelineOut:
    return PipelineOut(
        id=pipeline.id,
        name=pipeline.name,
        description=pipeline.description,
        record_count=pipeline.record_count,
        created_at=pipeline.created_at,
        status=run.status.value if run else "created",
        latest_run=run_out(run) if run else None,
    )


async def get_latest_run(*, session: AsyncSession, pipeline_id: int) -> PipelineRun | None:
    query = (
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id)
        .order_by(PipelineRun.id.desc())
        .limit(1)
        .options(selectinload(PipelineRun.stages))
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_pipeline(*, session: AsyncSession, pipeline_id: int) -> Pipeline | None:
    return await session.get(Pipeline, pipeline_id)


async def list_pipelines(
    *, session: AsyncSession, status: PipelineStatus | None, page: int, page_size: int
) -> tuple[list[tuple[Pipeline, PipelineRun | None]], int]:
    """One page of pipelines, newest first, each with its latest run, filtered by that run's status."""
    query = (
        select(Pipeline, PipelineRun)
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
    return [(pipeline, run) for pipeline, run in rows.tuples()], total


async def create_pipeline(*, session: AsyncSession, data: PipelineCreate) -> Pipeline:
    pipeline = Pipeline(
        name=data.name, description=data.description, record_count=data.record_count
    )
    session.add(pipeline)
    await session.commit()
    return pipeline


async def start_run(*, session: AsyncSession, pipeline: Pipeline) -> PipelineRun:
    """Add a pending run and create its flow run; if Prefect refuses, the run row is removed.

    Raises orchestrator.PrefectUnavailableError with the fix in its message.
    """
    run = PipelineRun(
        pipeline_id=pipeline.id,
        record_count=pipeline.record_count,
        status=Status.PENDING,
        stages=new_stage_rows(),
    )
    session.add(run)
    await session.commit()
    try:
        flow_run = await orchestrator.trigger_run(
            pipeline_id=pipeline.id, run_id=run.id, record_count=run.record_count
        )
    except BaseException:
        await session.execute(delete(PipelineStage).where(PipelineStage.run_id == run.id))
        await session.execute(delete(PipelineRun).where(PipelineRun.id == run.id))
        await session.commit()
        raise
    run.prefect_flow_run_id = str(flow_run.id)
    await session.commit()
    return run


async def delete_pipeline(*, session: AsyncSession, pipeline: Pipeline) -> None:
    """Remove a pipeline whose creation could not be completed (its first trigger failed)."""
    await session.execute(delete(Pipeline).where(Pipeline.id == pipeline.id))
    await session.commit()
