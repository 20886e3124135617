"""Routes of pipeline schedules: set, read, pause, resume, remove, list — kept in Prefect."""

from datetime import UTC, timedelta

from fastapi import APIRouter, HTTPException, Response, status
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

from app import removal
from app.api.auth import ReadAccess, WriteAccess
from app.api.deps import PipelineDep, PipelineId, SessionDep, pipeline_or_404
from app.api.no_body import no_body
from app.api.schedule_schemas import ScheduleIn, ScheduleOut
from app.api.schemas import errors
from app.models import Pipeline
from app.pipeline import schedules

router = APIRouter(tags=["schedules"], dependencies=[ReadAccess], responses=errors(401, 403, 503))
ONE = errors(404, 422)  # a route of one pipeline's schedule
WRITE = errors(403, 404, 422)
ONE_SECOND = timedelta(seconds=1)


async def _out(pipeline_id: int, schedule: DeploymentSchedule) -> ScheduleOut:
    kind = schedule.schedule
    interval = kind if isinstance(kind, IntervalSchedule) else None
    return ScheduleOut(
        pipeline_id=pipeline_id,
        schedule_id=str(schedule.id),
        cron=kind.cron if isinstance(kind, CronSchedule) else None,
        interval_seconds=interval.interval // ONE_SECOND if interval else None,
        anchor_date=interval.anchor_date.astimezone(UTC) if interval else None,
        timezone=getattr(kind, "timezone", None) or "UTC",  # Prefect's schedules read none as UTC
        active=schedule.active,
        next_run_at=await schedules.next_run_at(schedule),
    )


def _gone(pipeline_id: int) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"pipeline {pipeline_id} was deleted while its schedule was being set; "
        "the schedule was removed again",
    )


def _none(pipeline_id: int) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"pipeline {pipeline_id} has no schedule; set one with PUT /api/pipelines/{pipeline_id}/schedule",
    )


@router.get("/api/schedules")
async def list_schedules() -> list[ScheduleOut]:
    """Every pipeline schedule, by pipeline id."""
    found = await schedules.read_pipeline_schedules()
    return [await _out(pipeline_id, found[pipeline_id]) for pipeline_id in sorted(found)]


@router.put(
    "/api/pipelines/{pipeline_id}/schedule",
    dependencies=[WriteAccess],
    responses=errors(403, 404, 413, 415, 422),
)
async def set_schedule(pipeline: PipelineDep, data: ScheduleIn) -> ScheduleOut:
    """Create or replace the pipeline's schedule; each scheduled run is a run of the pipeline."""
    schedule = await schedules.set_pipeline_schedule(
        pipeline_id=pipeline.id,
        record_count=pipeline.record_count,
        schedule=data.to_prefect(),
        active=data.active,
    )
    if await removal.drop_schedule_if_removed(pipeline.id):  # deleted meanwhile
        raise _gone(pipeline.id)
    return await _out(pipeline.id, schedule)


@router.get("/api/pipelines/{pipeline_id}/schedule", responses=ONE)
async def read_schedule(pipeline: PipelineDep) -> ScheduleOut:
    found = (await schedules.read_pipeline_schedules()).get(pipeline.id)
    if found is None:
        raise _none(pipeline.id)
    return await _out(pipeline.id, found)


@router.post(
    "/api/pipelines/{pipeline_id}/schedule/pause",
    dependencies=[WriteAccess, no_body("pause")],
    responses=WRITE,
)
async def pause_schedule(pipeline: PipelineDep) -> ScheduleOut:
    """Stop scheduling runs (future scheduled runs are removed) until resumed."""
    return await _set_active(pipeline, active=False)


@router.post(
    "/api/pipelines/{pipeline_id}/schedule/resume",
    dependencies=[WriteAccess, no_body("resume")],
    responses=WRITE,
)
async def resume_schedule(pipeline: PipelineDep) -> ScheduleOut:
    return await _set_active(pipeline, active=True)


@router.delete(
    "/api/pipelines/{pipeline_id}/schedule",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WriteAccess, no_body("delete_schedule")],
    responses=WRITE,
)
async def delete_schedule(session: SessionDep, pipeline_id: PipelineId) -> Response:
    """Remove the pipeline's schedule; also one whose pipeline is gone, so it can be cleaned up."""
    if await schedules.delete_pipeline_schedule(pipeline_id) is None:
        await pipeline_or_404(session, pipeline_id)
        raise _none(pipeline_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _set_active(pipeline: Pipeline, *, active: bool) -> ScheduleOut:
    schedule = await schedules.set_pipeline_schedule_active(
        pipeline.id, active, record_count=pipeline.record_count
    )
    if schedule is None:
        raise _none(pipeline.id)
    return await _out(pipeline.id, schedule)
