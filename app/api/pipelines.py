"""Routes of /api/pipelines: create, list, read, stages, trigger, retry, cancel, delete."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app import cancellation, idempotency, read_cache, removal, retry, service
from app.api.auth import ReadAccess, WriteAccess
from app.api.deps import PipelineDep, PipelineId, RunDep, SessionDep, pipeline_or_404
from app.api.idempotency_key import IdempotencyKey
from app.api.no_body import no_body
from app.api.schemas import (
    PipelineCreate,
    PipelineOut,
    PipelinePage,
    PipelineStatus,
    RunOut,
    RunPage,
    StageOut,
    TriggerOut,
    errors,
)
from app.api.upload_schemas import upload_request_body
from app.config import get_settings
from app.db import get_sessionmaker
from app.models import PipelineRun
from app.pipeline import orchestrator
from app.pipeline.input_files import inputs

router = APIRouter(
    prefix="/api/pipelines",
    tags=["pipelines"],
    dependencies=[ReadAccess],
    responses=errors(401, 403, 422, 503),  # 403: a read at a name not this service's
)

MAX_PAGE_SIZE = 100


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WriteAccess],
    responses=errors(403, 409, 413, 415, 507),
    openapi_extra=upload_request_body(),  # the upload route shares this path, undocumented
)
async def create_pipeline(
    session: SessionDep, data: PipelineCreate, idempotency_key: IdempotencyKey = None
) -> PipelineOut:
    """Create a pipeline; with `"trigger": true` its first run starts at once. Repeating the
    request with the same Idempotency-Key returns the same pipeline and never a second run, even
    if the file it named has changed or gone since.
    `input_path` names a file under PIPELINE_INPUT_DIR to read instead of generating records;
    to upload a file instead, send multipart/form-data (name, description, trigger, format, file).
    """
    if data.input_path is not None and "record_count" in data.model_fields_set:
        raise inputs.InputError(
            "record_count", "leave it out with input_path; the file's rows are the records"
        )
    request_hash = idempotency.fingerprint({"json": data.model_dump(mode="json")})
    pipeline = await idempotency.repeat_of(session, idempotency_key, request_hash)
    created = False
    if pipeline is None:  # a new key, or none: only now is the file checked
        source = await _input_file(data.input_path) if data.input_path is not None else None
        pipeline, created = await service.create_pipeline(
            session=session,
            data=data,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            source=source,
        )
    run = await service.first_run(
        session=session, pipeline=pipeline, trigger=data.trigger, created=created
    )
    return await service.pipeline_view(session=session, pipeline=pipeline, run=run)


async def _input_file(input_path: str) -> inputs.CheckedInput:
    """The checked file `input_path` names (InputError → 422 naming what is wrong)."""
    settings = get_settings()
    return await asyncio.to_thread(
        inputs.check_under, input_path, settings.input_dir, settings.data_dir / "tmp"
    )


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
        items=rows,
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get("/{pipeline_id}", response_model=PipelineOut, responses=errors(404))
async def read_pipeline(pipeline_id: PipelineId) -> Response:
    """A pipeline with its latest run, the run's stages and its Prefect flow run link."""

    async def load() -> tuple[str, bytes]:
        # a session only on a miss: a cached answer never touches the database
        async with get_sessionmaker()() as session:
            pipeline = await pipeline_or_404(session, pipeline_id)
            run = await service.get_latest_run(session=session, pipeline_id=pipeline.id)
            out = await service.pipeline_view(session=session, pipeline=pipeline, run=run)
        return out.status, out.model_dump_json().encode()

    return Response(await read_cache.fetch(pipeline_id, load), media_type="application/json")


@router.get("/{pipeline_id}/stages", responses=errors(404))
async def read_stages(session: SessionDep, pipeline: PipelineDep) -> list[StageOut]:
    """The stages of the pipeline's latest run (empty before its first run)."""
    run = await service.get_latest_run(session=session, pipeline_id=pipeline.id)
    return [StageOut.model_validate(stage) for stage in run.stages] if run else []


def _triggered(run: PipelineRun) -> TriggerOut:
    assert run.prefect_flow_run_id is not None
    return TriggerOut(
        pipeline_id=run.pipeline_id,
        run_id=run.id,
        prefect_flow_run_id=run.prefect_flow_run_id,
        prefect_flow_run_url=orchestrator.flow_run_url(run.prefect_flow_run_id),
        status=run.status,
    )


@router.post(
    "/{pipeline_id}/trigger",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess, no_body("trigger")],
    responses=errors(403, 404, 409),
)
async def trigger_pipeline(
    session: SessionDep, pipeline: PipelineDep, idempotency_key: IdempotencyKey = None
) -> TriggerOut:
    """Start a new run: a flow run of `data-pipeline-deployment` on the `default` pool, with the
    pipeline's own settings (no body, or `{}`). The same Idempotency-Key within the window
    returns the same run and creates no second flow run."""
    run = await service.start_run(
        session=session, pipeline=pipeline, idempotency_key=idempotency_key
    )
    return _triggered(run)


@router.post(
    "/{pipeline_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess, no_body("retry")],
    responses=errors(403, 404, 409),
)
async def retry_pipeline(
    session: SessionDep, pipeline: PipelineDep, idempotency_key: IdempotencyKey = None
) -> TriggerOut:
    """Start a new run of a failed or cancelled pipeline, with its own settings (no body, or
    `{}`); earlier runs are kept (409 otherwise).
    The same Idempotency-Key within the window returns the same run, however it has ended."""
    run = await retry.retry_run(session=session, pipeline=pipeline, idempotency_key=idempotency_key)
    return _triggered(run)


@router.post(
    "/{pipeline_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess, no_body("cancel")],
    responses=errors(403, 404, 409),
)
async def cancel_pipeline(session: SessionDep, pipeline: PipelineDep) -> RunOut:
    """Cancel the runs in flight (Prefect: Cancelling → Cancelled), answering with the newest;
    with none in flight, a cancelled latest run is answered again, a finished one is a 409."""
    return service.run_out(await cancellation.cancel_runs(session=session, pipeline=pipeline))


@router.delete(
    "/{pipeline_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WriteAccess, no_body("delete")],
    responses=errors(403, 404, 409),
)
async def delete_pipeline(session: SessionDep, pipeline: PipelineDep) -> Response:
    """Delete a pipeline with its runs, their files and its schedule; a pending or running run
    must be cancelled first (409). Prefect keeps its flow runs' history."""
    await removal.delete_pipeline(session=session, pipeline=pipeline)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{pipeline_id}/runs", responses=errors(404))
async def list_runs(
    session: SessionDep,
    pipeline: PipelineDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> RunPage:
    """Every run of the pipeline, newest first, with its stages."""
    runs, total = await service.list_runs(
        session=session, pipeline_id=pipeline.id, page=page, page_size=page_size
    )
    return RunPage(
        items=[service.run_out(run) for run in runs], total=total, page=page, page_size=page_size
    )


@router.get("/{pipeline_id}/runs/{run_id}", responses=errors(404))
async def read_run(run: RunDep) -> RunOut:
    """One run of the pipeline, with its stages (404 for a run of another pipeline)."""
    return service.run_out(run)
