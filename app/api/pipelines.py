"""Routes of /api/pipelines: create, list, read, stages, trigger."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from app import service
from app.api.deps import PipelineDep, SessionDep
from app.api.schemas import (
    PipelineCreate,
    PipelineOut,
    PipelinePage,
    PipelineStatus,
    StageOut,
    TriggerOut,
)
from app.pipeline import orchestrator

router = APIRouter(prefix="/api/pipelines", tags=["pipelines"])

MAX_PAGE_SIZE = 100


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_pipeline(session: SessionDep, data: PipelineCreate) -> PipelineOut:
    """Create a pipeline; with `"trigger": true` its first run starts at once."""
    pipeline = await service.create_pipeline(session=session, data=data)
    run = None
    if data.trigger:
        try:
            run = await service.start_run(session=session, pipeline=pipeline)
        except orchestrator.PrefectUnavailableError:
            await service.delete_pipeline(session=session, pipeline=pipeline)
            raise
        run = await service.get_latest_run(session=session, pipeline_id=pipeline.id)
    return service.pipeline_out(pipeline, run)


@router.get("")
async def list_pipelines(
    session: SessionDep,
    status: PipelineStatus | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> PipelinePage:
    """Pipelines, newest first, optionally only those whose latest run has `status`."""
    rows, total = await service.list_pipelines(
        session=session, status=status, page=page, page_size=page_size
    )
    return PipelinePage(
        items=[service.pipeline_out(pipeline, run) for pipeline, run in rows],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get("/{pipeline_id}")
async def read_pipeline(session: SessionDep, pipeline: PipelineDep) -> PipelineOut:
    """A pipeline with its latest run, the run's stages and its Prefect flow run link."""
    run = await service.get_latest_run(session=session, pipeline_id=pipeline.id)
    return service.pipeline_out(pipeline, run)


@router.get("/{pipeline_id}/stages")
async def read_stages(session: SessionDep, pipeline: PipelineDep) -> list[StageOut]:
    """The stages of the pipeline's latest run (empty before its first run)."""
    run = await service.get_latest_run(session=session, pipeline_id=pipeline.id)
    return [StageOut.model_validate(stage) for stage in run.stages] if run else []


@router.post("/{pipeline_id}/trigger", status_code=status.HTTP_202_ACCEPTED)
async def trigger_pipeline(session: SessionDep, pipeline: PipelineDep) -> TriggerOut:
    """Start a new run: a flow run of `data-pipeline-deployment` on the `default` pool."""
    run = await service.start_run(session=session, pipeline=pipeline)
    assert run.prefect_flow_run_id is not None
    return TriggerOut(
        pipeline_id=pipeline.id,
        run_id=run.id,
        prefect_flow_run_id=run.prefect_flow_run_id,
        prefect_flow_run_url=orchestrator.flow_run_url(run.prefect_flow_run_id),
        status=run.status,
    )
