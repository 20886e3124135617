"""Routes of pipeline schedules: set, read, pause, resume, remove, list — kept in Prefect."""

from contextlib import suppress
from datetime import UTC, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
from sqlalchemy import select

from app import removal, service
from app.api.auth import ReadAccess, WriteAccess
from app.api.deps import PipelineId, SessionDep, pipeline_or_404
from app.api.no_body import no_body
from app.api.schedule_schemas import ListedSchedule, ScheduleIn, ScheduleOut
from app.api.schemas import errors
from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline import orchestrator, schedules

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
        day_or=kind.day_or if isinstance(kind, CronSchedule) else None,
        rrule=kind.rrule if isinstance(kind, RRuleSchedule) else None,
        interval_seconds=interval.interval // ONE_SECOND if interval else None,
        anchor_date=interval.anchor_date.astimezone(UTC) if interval else None,
        timezone=getattr(kind, "timezone", None) or "UTC",  # Prefect's schedules read none as UTC
        active=schedule.active,
        next_run_at=await schedules.next_run_at(schedule),
    )


async def _not_found(pipeline_id: int) -> HTTPException:
    """The 404 of a pipeline that does not exist, saying so of a schedule it left in Prefect."""
    with suppress(orchestrator.PrefectUnavailableError):  # then the pipeline's 404 is all
        held = (await schedules.read_pipeline_schedules()).get(pipeline_id)
        if held is not None:
            doing = (
                "making runs that end Cancelled without running anything"
                if held.active
                else "paused"
            )
            return HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"pipeline {pipeline_id} not found, but its schedule is still in Prefect, {doing}; "
                f"remove it with DELETE /api/pipelines/{pipeline_id}/schedule",
            )
    return HTTPException(status.HTTP_404_NOT_FOUND, f"pipeline {pipeline_id} not found")


async def _pipeline(session: SessionDep, pipeline_id: PipelineId) -> Pipeline:
    """PipelineDep, its 404 saying so of a schedule the pipeline left in Prefect."""
    pipeline = await service.get_pipeline(session=session, pipeline_id=pipeline_id)
    if pipeline is None:
        raise await _not_found(pipeline_id)
    return pipeline


ScheduledPipelineDep = Annotated[Pipeline, Depends(_pipeline)]


async def _exists(pipeline_id: int) -> bool:
    async with get_sessionmaker()() as session:  # not the request's: its snapshot may be older
        return await session.get(Pipeline, pipeline_id) is not None


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
async def list_schedules(session: SessionDep) -> list[ListedSchedule]:
    """Every pipeline schedule, by pipeline id; also one whose pipeline no longer exists
    (`pipeline_exists` false), to be removed with DELETE /api/pipelines/{id}/schedule."""
    found = await schedules.read_pipeline_schedules()
    ids = select(Pipeline.id).where(Pipeline.id.in_(found))
    existing = set((await session.execute(ids)).scalars()) if found else set()
    return [
        ListedSchedule(
            **(await _out(pipeline_id, found[pipeline_id])).model_dump(),
            pipeline_exists=pipeline_id in existing,
        )
        for pipeline_id in sorted(found)
    ]


@router.put(
    "/api/pipelines/{pipeline_id}/schedule",
    dependencies=[WriteAccess],
    responses=errors(403, 404, 409, 413, 415, 422),
)
async def set_schedule(pipeline: ScheduledPipelineDep, data: ScheduleIn) -> ScheduleOut:
    """Create or replace the pipeline's whole schedule (a field left out takes its default:
    `active` true); each scheduled run is a run of the pipeline."""
    for _ in range(2):  # once more when a request at the same time removed it as it was set
        schedule = await schedules.set_pipeline_schedule(
            pipeline_id=pipeline.id,
            record_count=pipeline.record_count,
            schedule=data.to_prefect(),
            active=data.active,
        )
        if await removal.drop_schedule_if_removed(pipeline.id):  # deleted meanwhile
            raise _gone(pipeline.id)
        if schedule is not None:
            return await _out(pipeline.id, schedule)
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        f"pipeline {pipeline.id}'s schedule was removed by other requests each time this one set "
        f"it; see whether it has one with GET /api/pipelines/{pipeline.id}/schedule, and set it "
        f"again with PUT /api/pipelines/{pipeline.id}/schedule",
    )


@router.get("/api/pipelines/{pipeline_id}/schedule", responses=ONE)
async def read_schedule(session: SessionDep, pipeline_id: PipelineId) -> ScheduleOut:
    if await session.get(Pipeline, pipeline_id) is None:
        raise await _not_found(pipeline_id)
    found = (await schedules.read_pipeline_schedules()).get(pipeline_id)
    if found is None:
        raise _none(pipeline_id)
    return await _out(pipeline_id, found)


@router.post(
    "/api/pipelines/{pipeline_id}/schedule/pause",
    dependencies=[WriteAccess, no_body("pause")],
    responses=WRITE,
)
async def pause_schedule(pipeline: ScheduledPipelineDep) -> ScheduleOut:
    """Stop scheduling runs (future scheduled runs are removed) until resumed."""
    return await _set_active(pipeline, active=False)


@router.post(
    "/api/pipelines/{pipeline_id}/schedule/resume",
    dependencies=[WriteAccess, no_body("resume")],
    responses=WRITE,
)
async def resume_schedule(pipeline: ScheduledPipelineDep) -> ScheduleOut:
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
    if schedule is None:  # it had none, or a DELETE at the same time removed it, or its pipeline
        raise _none(pipeline.id) if await _exists(pipeline.id) else await _not_found(pipeline.id)
    return await _out(pipeline.id, schedule)
