"""GET /api/pipelines/{id}/logs: the latest run's logs, as its flow run sent them to Prefect."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from app import service
from app.api.auth import ReadAccess
from app.api.deps import PipelineDep, SessionDep
from app.api.schemas import errors
from app.models import PipelineRun, Status
from app.pipeline import run_logs

router = APIRouter(
    prefix="/api/pipelines",
    tags=["logs"],
    dependencies=[ReadAccess],
    responses=errors(401, 403, 404, 422, 503),
)

MAX_LOG_LINES = 200  # Prefect's own page limit (PREFECT_API_DEFAULT_LIMIT)
MAX_OFFSET = 2**31 - 1  # past what Prefect's database takes, its 500 looked like an outage


class LogOut(BaseModel):
    id: str = Field(
        description="Prefect's id of the line: a client reading on tells lines apart by it."
    )
    timestamp: datetime
    level: str
    logger: str
    message: str
    task_run_id: str | None


@router.get("/{pipeline_id}/logs")
async def read_logs(
    session: SessionDep,
    pipeline: PipelineDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LINES)] = MAX_LOG_LINES,
    tail: Annotated[
        bool, Query(description="The last `limit` lines instead of the first; still oldest first.")
    ] = False,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description="Lines to skip from the first (or with `tail`, the last).",
        ),
    ] = 0,
    run_id: Annotated[
        int | None,
        Query(ge=1, le=2**31 - 1, description="This run's lines, not the latest run's."),
    ] = None,
) -> list[LogOut]:
    """The latest run's (or `run_id`'s) log lines (flow and task runs), oldest first; empty
    before its first run. A cancelled run's end with the service's line saying so and by what
    (`logger` "pipeline", at the time of the cancel or of the last line above it, if later),
    instead of what Prefect logs from its flow-run process's stop on (`Finished in state
    Running()`, its worker's reload of the flow: `Running 1 deployment pull step(s)` …, also
    when a killed process logged no end); one that never reached Prefect has that line alone.

    503 when Prefect, which keeps the logs, is unreachable.
    """
    if run_id is None:
        run = await service.get_latest_run(session=session, pipeline_id=pipeline.id)
    elif (run := await session.get(PipelineRun, run_id)) is None or run.pipeline_id != pipeline.id:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"run {run_id} not found in pipeline {pipeline.id}"
        )
    if run is None:
        return []
    cancelled = (
        run_logs.Cancelled(run_id=run.id, reason=run.error, at=run.completed_at)
        if run.status == Status.CANCELLED
        else None
    )
    if run.prefect_flow_run_id is None:  # it never reached Prefect: no lines of its own
        lines = run_logs.never_in_prefect(cancelled, offset=offset)
    else:
        lines = await run_logs.read_run_logs(
            run.prefect_flow_run_id, limit=limit, tail=tail, offset=offset, cancelled=cancelled
        )
    return [LogOut.model_validate(line, from_attributes=True) for line in lines]
