"""A pipeline's scheduled flow runs waiting to start, around a change of its schedule: read
before it, the ones left deleted when the schedule stops, and the runs of those gone cancelled.

A schedule's flow run gets its run when its process claims it (claim.py), so a waiting one has
none — except one the watchdog scheduled again after it crashed before it began: that one got
its run then (unclaimed.py). Gone with the change (Prefect deletes a paused, removed or replaced
schedule's future runs; a stopped one's due runs are deleted below), that run would wait for a
flow run that no longer exists, and the watchdog would fail it saying so; it is cancelled,
saying why."""

from contextlib import suppress
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import PipelineRun, Status
from app.pipeline.stage_rows import UNFINISHED
from app.pipeline.status import update_pipeline_status

_PAGE = 200  # Prefect's default and largest page of flow runs
SCHEDULE_CHANGED_FIRST = "cancelled: its schedule was paused, removed or replaced before it began"


async def read_waiting(client: PrefectClient, deployment_id: UUID, pipeline_id: int) -> list[UUID]:
    """The pipeline's scheduled runs that have not started and are still waiting. Not one that
    has run and waits for a flow retry (AwaitingRetry is a Scheduled state too)."""
    ours: list[UUID] = []
    offset = 0
    while True:  # every page: a burst of triggers can keep hundreds of other runs waiting
        page = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            limit=_PAGE,
            offset=offset,
        )
        ours += [
            run.id
            for run in page
            if run.auto_scheduled
            and run.run_count == 0
            and run.parameters.get("pipeline_id") == pipeline_id
        ]
        if len(page) < _PAGE:
            return ours
        offset += _PAGE


async def delete_waiting(client: PrefectClient, deployment_id: UUID, pipeline_id: int) -> None:
    """Remove the pipeline's scheduled runs that have not started and are still waiting.

    Prefect removes only those due in the future: a run already due but not yet taken by a
    worker, or one its scheduler made while the schedule was being paused, would still start.
    A run a worker takes meanwhile is no longer Scheduled and is left alone, and so is one that
    has run and waits for a flow retry: its history stays, and schedule_stopped ends its next
    attempt.
    """
    for flow_run_id in await read_waiting(client, deployment_id, pipeline_id):
        with suppress(ObjectNotFound):  # removed meanwhile: nothing left to do
            await client.delete_flow_run(flow_run_id)


async def cancel_runs_of_gone(client: PrefectClient, waited: list[UUID]) -> list[int]:
    """Cancel the unfinished runs of those `waited` flow runs that are gone now: their ids."""
    if not waited:
        return []
    async with get_sessionmaker()() as session:
        rows = await session.execute(
            select(PipelineRun.id, PipelineRun.pipeline_id, PipelineRun.prefect_flow_run_id).where(
                PipelineRun.prefect_flow_run_id.in_([str(flow_run_id) for flow_run_id in waited]),
                PipelineRun.status.in_(UNFINISHED),
            )
        )
        runs = rows.tuples().all()
    return [
        run_id
        for run_id, pipeline_id, flow_run_id in runs
        if await _gone(client, str(flow_run_id))  # else it still runs, or waits
        and await update_pipeline_status(
            pipeline_id, None, Status.CANCELLED, SCHEDULE_CHANGED_FIRST, run_id=run_id
        )
    ]


async def _gone(client: PrefectClient, flow_run_id: str) -> bool:
    try:
        await client.read_flow_run(UUID(flow_run_id))
    except ObjectNotFound:
        return True
    return False
