"""DELETE /api/pipelines/{id} with Prefect unreachable (port 9): what is refused, and that a
refusal deletes nothing. tests/e2e/test_delete.py deletes for real."""

import asyncio

import httpx
import pytest
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.client.schemas.schedules import SCHEDULE_TYPES, CronSchedule, RRuleSchedule
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from app import removal
from app.db import get_engine, get_sessionmaker
from app.models import Pipeline, PipelineRun, Status
from app.pipeline import schedules
from app.pipeline.orchestrator import PrefectUnavailableError
from app.service import ConflictError
from tests.support.blocked import lock_waits
from tests.support.rows import add_pipeline, add_run

UNREACHABLE = (
    "Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
    "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
)


async def test_a_pipeline_with_a_run_in_flight_is_kept(client: httpx.AsyncClient) -> None:
    pipeline_id = await add_pipeline("busy")
    await add_run(pipeline_id, Status.COMPLETED, {})
    run_id = await add_run(pipeline_id, Status.RUNNING, {})
    response = await client.delete(f"/api/pipelines/{pipeline_id}")
    assert (response.status_code, response.json()["detail"]) == (
        409,
        f"run {run_id} of pipeline {pipeline_id} is running; cancel it first "
        f"(POST /api/pipelines/{pipeline_id}/cancel), then delete the pipeline",
    )
    runs = (await client.get(f"/api/pipelines/{pipeline_id}/runs")).json()
    assert runs["total"] == 2


async def test_prefect_down_deletes_nothing(client: httpx.AsyncClient) -> None:
    """Its schedule could not be removed: Prefect would go on making runs of it."""
    pipeline_id = await add_pipeline("finished")
    await add_run(pipeline_id, Status.FAILED, {})
    response = await client.delete(f"/api/pipelines/{pipeline_id}")
    assert (response.status_code, response.json()["detail"]) == (503, UNREACHABLE)
    assert (await client.get(f"/api/pipelines/{pipeline_id}")).json()["status"] == "failed"


async def test_an_unknown_pipeline_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/pipelines/424242")
    assert (response.status_code, response.json()) == (
        404,
        {"message": "pipeline 424242 not found", "detail": "pipeline 424242 not found"},
    )


@pytest.mark.parametrize(
    "kind",
    [CronSchedule(cron="0 * * * *"), RRuleSchedule(rrule="FREQ=HOURLY;INTERVAL=2")],
    ids=["cron", "rrule"],
)
@pytest.mark.parametrize("prefect_back", [True, False], ids=["put-back", "prefect-gone"])
async def test_a_run_started_while_deleting_keeps_its_pipeline(
    database: str, monkeypatch: pytest.MonkeyPatch, prefect_back: bool, kind: SCHEDULE_TYPES
) -> None:
    """A trigger (or a scheduled run) inserting its run while the delete runs: the delete waits
    for it, sees it and refuses, on both backends. On PostgreSQL the delete once went through,
    cascading the new run away under its trigger (a 500, and a flow run with no pipeline).
    The schedule, removed first, is put back as it was: the pipeline stays; if Prefect went away
    meanwhile, the 409 says so. Any kind of schedule: one edited in the Prefect UI into an RRule
    was once left removed. (Prefect is down in these tests: its side is recorded;
    tests/e2e/test_delete.py removes schedules for real.) The trigger commits only once the
    delete is seen waiting for its lock (tests/support/blocked.py): a delete that asked for the
    lock only after the commit would be refused the same way without the race."""
    hourly = DeploymentSchedule(schedule=kind, active=False)
    restored: list[tuple[int, int, object, bool]] = []

    async def remove_schedule(pipeline_id: int) -> DeploymentSchedule:
        return hourly

    async def put_back(
        *, pipeline_id: int, record_count: int, schedule: object, active: bool
    ) -> DeploymentSchedule:
        restored.append((pipeline_id, record_count, schedule, active))
        if not prefect_back:
            raise PrefectUnavailableError(UNREACHABLE)
        return hourly

    monkeypatch.setattr(schedules, "delete_pipeline_schedule", remove_schedule)
    monkeypatch.setattr(schedules, "set_pipeline_schedule", put_back)
    pipeline_id = await add_pipeline("raced")
    async with lock_waits() as waits, get_sessionmaker()() as trigger:
        run = PipelineRun(pipeline_id=pipeline_id, record_count=1, status=Status.PENDING)
        trigger.add(run)
        await trigger.flush()  # inserted, not yet committed: start_run between add and commit
        run_id = run.id
        async with get_sessionmaker()() as session:
            pipeline = await session.get(Pipeline, pipeline_id)
            assert pipeline is not None
            deleting = asyncio.create_task(
                removal.delete_pipeline(session=session, pipeline=pipeline)
            )
            await waits.until_waiting(1, deleting)  # for the trigger's transaction
            await trigger.commit()
            with pytest.raises(ConflictError) as refused:
                await deleting
    in_flight = (
        f"run {run_id} of pipeline {pipeline_id} is pending; cancel it first "
        f"(POST /api/pipelines/{pipeline_id}/cancel), then delete the pipeline"
    )
    assert str(refused.value) == (
        in_flight
        if prefect_back
        else f"{in_flight}; its schedule was removed and could not be put back ({UNREACHABLE}): "
        f"set it again with PUT /api/pipelines/{pipeline_id}/schedule"
    )
    async with get_sessionmaker()() as session:
        assert await session.get(PipelineRun, run_id) is not None
    assert restored == [(pipeline_id, 1000, hourly.schedule, False)]


async def test_a_delete_the_database_fails_puts_the_schedule_back(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule is removed first; the rows' delete then failed on the database (locked here;
    a dropped connection is the same): a 503, the pipeline stayed, and its schedule was lost."""
    hourly = DeploymentSchedule(schedule=CronSchedule(cron="0 * * * *"), active=True)
    restored: list[tuple[int, int, object, bool]] = []

    async def remove_schedule(pipeline_id: int) -> DeploymentSchedule:
        return hourly

    async def put_back(
        *, pipeline_id: int, record_count: int, schedule: object, active: bool
    ) -> DeploymentSchedule:
        restored.append((pipeline_id, record_count, schedule, active))
        return hourly

    monkeypatch.setattr(schedules, "delete_pipeline_schedule", remove_schedule)
    monkeypatch.setattr(schedules, "set_pipeline_schedule", put_back)
    pipeline_id = await add_pipeline("locked out")
    run_id = await add_run(pipeline_id, Status.COMPLETED, {})
    async with get_engine().connect() as other_writer:  # holds the pipeline's row (PostgreSQL),
        await other_writer.execute(  # the file's write lock (SQLite), past the delete's patience
            update(Pipeline).where(Pipeline.id == pipeline_id).values(description="busy")
        )
        async with get_sessionmaker()() as session:
            pipeline = await session.get(Pipeline, pipeline_id)
            assert pipeline is not None
            impatient = (
                "PRAGMA busy_timeout = 200"
                if session.get_bind().dialect.name == "sqlite"
                else "SET LOCAL lock_timeout = '200ms'"
            )
            await session.execute(text(impatient))
            with pytest.raises(DBAPIError):
                await removal.delete_pipeline(session=session, pipeline=pipeline)
        await other_writer.rollback()
    assert restored == [(pipeline_id, 1000, hourly.schedule, True)]
    async with get_sessionmaker()() as session:
        assert await session.get(Pipeline, pipeline_id) is not None
        assert await session.get(PipelineRun, run_id) is not None
