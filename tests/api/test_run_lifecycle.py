"""A run's life at its edges, on a real database: a final status that waited for the write lock,
a stage cancelled while it ran, a scheduled run of a pipeline deleted meanwhile, and who counts a
run whose claim failed on the database."""

import asyncio
import socket
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest
from prefect.client.schemas.objects import FlowRun, StateType
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from app.db import get_engine, get_sessionmaker
from app.models import Pipeline, PipelineRun, PipelineStage, Status, utcnow
from app.pipeline import flows
from app.pipeline.claim import (
    PipelineDeletedError,
    PipelineNotFoundError,
    RunSettledError,
    claim_run,
)
from app.pipeline.status import update_pipeline_status
from tests.support.blocked import lock_waits
from tests.support.metrics import sent, statsd
from tests.support.rows import add_pipeline, add_run, read_run

__all__ = ["statsd"]  # the fixture, shared

FLOW_RUN_ID = "0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10"


@pytest.mark.usefixtures("database")
async def test_a_cancel_that_waited_for_the_lock_never_ends_the_run_before_it_started() -> None:
    """The cancel took its time before it had the write lock; the run's first stage started while
    it waited, and the run ended 0.3 s before it began (a negative duration). The stage starts
    only once the cancel is seen waiting for the lock (tests/support/blocked.py): a cancel that
    reached the database after the stage's commit would pass without the race."""
    pipeline_id = await add_pipeline("raced")
    run_id = await add_run(pipeline_id, Status.PENDING, {})
    async with lock_waits() as waits, get_engine().connect() as stage_start:
        # holds the run's row (PostgreSQL), the file's write lock (SQLite), as the stage's would
        await stage_start.execute(
            update(PipelineRun).where(PipelineRun.id == run_id).values(heartbeat_at=None)
        )
        cancel = asyncio.create_task(
            update_pipeline_status(
                pipeline_id, None, Status.CANCELLED, "cancelled through the API", run_id=run_id
            )
        )
        await waits.until_waiting(1, cancel)
        began = utcnow()
        await stage_start.execute(
            update(PipelineRun)
            .where(PipelineRun.id == run_id)
            .values(status=Status.RUNNING, started_at=began)
        )
        await stage_start.execute(
            update(PipelineStage)
            .where(PipelineStage.run_id == run_id, PipelineStage.name == "generate")
            .values(status=Status.RUNNING, started_at=began, attempts=1)
        )
        await stage_start.commit()
    assert await cancel
    run = await read_run(run_id)
    assert run.completed_at is not None and run.completed_at > began
    assert (run.status, run.started_at, run.duration_seconds) == (
        Status.CANCELLED,
        began,
        (run.completed_at - began).total_seconds(),
    )
    generate = run.stages[0]
    assert (generate.status, generate.completed_at, generate.duration_seconds) == (
        Status.CANCELLED,
        run.completed_at,
        run.duration_seconds,
    )


@pytest.mark.usefixtures("database")
async def test_a_stage_cancelled_while_it_ran_has_its_duration() -> None:
    """Cancelled mid-stage: the stage got its end but no duration (a failed run's had one)."""
    pipeline_id = await add_pipeline("cancelled mid-stage")
    run_id = await add_run(pipeline_id, Status.PENDING, {})
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id, attempt=1)
    await update_pipeline_status(pipeline_id, "generate", Status.COMPLETED, run_id=run_id)
    await update_pipeline_status(pipeline_id, "ingest", Status.RUNNING, run_id=run_id, attempt=1)
    assert await update_pipeline_status(
        pipeline_id, None, Status.CANCELLED, "cancelled through the API", run_id=run_id
    )
    run = await read_run(run_id)
    ingest = run.stages[1]
    assert run.completed_at is not None and ingest.started_at is not None
    assert [(s.status, s.message) for s in run.stages] == [
        (Status.COMPLETED, None),
        (Status.CANCELLED, "cancelled"),
        (Status.CANCELLED, "cancelled"),
        (Status.CANCELLED, "cancelled"),
        (Status.CANCELLED, "cancelled"),
    ]
    assert (ingest.completed_at, ingest.duration_seconds) == (
        run.completed_at,
        (run.completed_at - ingest.started_at).total_seconds(),
    )
    assert [s.duration_seconds for s in run.stages[2:]] == [None, None, None]  # never started


def _flow_run_of(run_id: int | None, *, scheduled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow is called as a worker's process would, for a flow run tagged with `run_id`
    (none: a run made by a schedule); Prefect's server itself is not needed."""
    made = FlowRun(
        id=UUID(FLOW_RUN_ID),
        flow_id=UUID(int=8),
        name="scheduled" if scheduled else "triggered",
        auto_scheduled=scheduled,
        tags=[f"pipeline-run:{run_id}"] if run_id else [],
    )
    context = SimpleNamespace(flow_run=made)
    monkeypatch.setattr(flows, "FlowRunContext", SimpleNamespace(get=lambda: context))
    monkeypatch.setattr(
        flows,
        "flow_run",
        SimpleNamespace(id=made.id, tags=made.tags, flow_name="Data Pipeline"),
    )

    async def checked_before_the_delete(run: FlowRun, pipeline_id: int) -> bool:
        return False  # its schedule was still there when the flow looked

    monkeypatch.setattr(flows, "schedule_stopped", checked_before_the_delete)


async def _runs() -> int:
    async with get_sessionmaker()() as session:
        return int(await session.scalar(select(func.count()).select_from(PipelineRun)) or 0)


@pytest.mark.usefixtures("database")
async def test_a_scheduled_run_of_a_pipeline_deleted_meanwhile_is_cancelled_starting_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deleted between the flow's schedule check and its claim: the flow run failed
    (PipelineNotFoundError), as a failure, and Prefect ran it again."""
    pipeline_id = await add_pipeline("deleted")
    async with get_sessionmaker()() as session, session.begin():
        await session.delete(await session.get(Pipeline, pipeline_id))
    skipped = (
        f"skipped: pipeline {pipeline_id} was deleted, with its schedule, before this run started"
    )
    _flow_run_of(None, scheduled=True, monkeypatch=monkeypatch)
    ended = await flows.run_data_pipeline_flow.fn(pipeline_id, 10)
    assert not isinstance(ended, dict)
    assert (ended.type, ended.message, await _runs()) == (StateType.CANCELLED, skipped, 0)

    with pytest.raises(PipelineDeletedError, match=f"^{skipped}$") as refused:
        await claim_run(
            pipeline_id=pipeline_id,
            flow_run_id=FLOW_RUN_ID,
            run_id=None,
            record_count=10,
            scheduled=True,
        )
    assert isinstance(refused.value, RunSettledError)  # starts nothing, counts nothing
    with pytest.raises(PipelineNotFoundError, match=f"^pipeline {pipeline_id} does not exist$"):
        await claim_run(  # started by hand in Prefect for a pipeline it names: a failure
            pipeline_id=pipeline_id, flow_run_id=FLOW_RUN_ID, run_id=None, record_count=10
        )


@pytest.mark.usefixtures("database")
async def test_a_run_whose_claim_failed_on_the_database_counts_once(
    statsd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim of a triggered run failed ("database is locked"): the flow counted the run
    failed, and the watchdog, settling its row later, counted it again. A run of a schedule whose
    claim failed has no row: the flow counts it."""
    pipeline_id = await add_pipeline("locked out")
    run_id = await add_run(pipeline_id, Status.PENDING, {}, prefect_flow_run_id=FLOW_RUN_ID)

    async def locked(**claim: Any) -> None:
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    monkeypatch.setattr(flows, "claim_run", locked)
    _flow_run_of(run_id, scheduled=False, monkeypatch=monkeypatch)
    with pytest.raises(OperationalError):
        await flows.run_data_pipeline_flow.fn(pipeline_id, 10)
    assert await update_pipeline_status(  # the watchdog: Prefect says Failed
        pipeline_id, None, Status.FAILED, error="the Prefect flow run failed", run_id=run_id
    )
    assert sent(statsd) == [
        "pipeline.errors:1|c|#stage:flow,error_type:OperationalError",
        "pipeline.runs:1|c|#status:failed",  # once, by its row (it never started: no duration)
    ]

    _flow_run_of(None, scheduled=True, monkeypatch=monkeypatch)
    with pytest.raises(OperationalError):
        await flows.run_data_pipeline_flow.fn(pipeline_id, 10)
    assert sent(statsd) == [
        "pipeline.errors:1|c|#stage:flow,error_type:OperationalError",
        "pipeline.runs:1|c|#status:failed",
        "pipeline.duration|d|#status:failed",
    ]
    assert await _runs() == 1
