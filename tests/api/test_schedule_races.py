"""A schedule set while its pipeline is deleted must not outlive it (Prefect would go on making
runs of a pipeline that is gone). Prefect's side is a dict here; tests/e2e/test_schedules.py
schedules for real."""

from typing import Any

import httpx
import pytest
from prefect.client.schemas.objects import DeploymentSchedule
from sqlalchemy import delete

from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline import schedules
from tests.support.rows import add_pipeline

HOURLY = {"interval_seconds": 3600}


@pytest.fixture
def in_prefect(monkeypatch: pytest.MonkeyPatch) -> dict[int, DeploymentSchedule]:
    """The deployment's schedules, by pipeline id."""
    held: dict[int, DeploymentSchedule] = {}

    async def set_schedule(*, pipeline_id: int, schedule: Any, active: bool, **_: Any) -> Any:
        held[pipeline_id] = DeploymentSchedule(schedule=schedule, active=active)
        return held[pipeline_id]

    async def delete_schedule(pipeline_id: int) -> DeploymentSchedule | None:
        return held.pop(pipeline_id, None)

    monkeypatch.setattr(schedules, "set_pipeline_schedule", set_schedule)
    monkeypatch.setattr(schedules, "delete_pipeline_schedule", delete_schedule)
    return held


async def _remove_rows(pipeline_id: int) -> None:
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))


async def test_a_schedule_set_as_its_pipeline_is_deleted_is_removed_again(
    client: httpx.AsyncClient,
    in_prefect: dict[int, DeploymentSchedule],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PUT read the pipeline, the DELETE removed it (no schedule yet), then PUT set one: 200,
    and the schedule made runs of a pipeline that was gone."""
    pipeline_id = await add_pipeline("raced")
    set_schedule = schedules.set_pipeline_schedule

    async def deleted_meanwhile(**kwargs: Any) -> DeploymentSchedule:
        await _remove_rows(pipeline_id)
        return await set_schedule(**kwargs)

    monkeypatch.setattr(schedules, "set_pipeline_schedule", deleted_meanwhile)
    response = await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)
    assert (response.status_code, response.json()["detail"]) == (
        404,
        f"pipeline {pipeline_id} was deleted while its schedule was being set; "
        "the schedule was removed again",
    )
    assert in_prefect == {}


async def test_a_delete_removes_a_schedule_set_after_it_removed_the_first(
    client: httpx.AsyncClient,
    in_prefect: dict[int, DeploymentSchedule],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other order: DELETE removed the schedule, a PUT set one (and found the pipeline still
    there), then DELETE removed the rows."""
    pipeline_id = await add_pipeline("raced")
    assert (await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)).is_success
    delete_schedule = schedules.delete_pipeline_schedule
    calls = 0

    async def put_meanwhile(pipeline_id: int) -> DeploymentSchedule | None:
        nonlocal calls
        calls += 1
        removed = await delete_schedule(pipeline_id)
        if calls == 1:
            response = await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)
            assert response.status_code == 200
        return removed

    monkeypatch.setattr(schedules, "delete_pipeline_schedule", put_meanwhile)
    assert (await client.delete(f"/api/pipelines/{pipeline_id}")).status_code == 204
    assert in_prefect == {}


async def test_the_schedule_of_a_pipeline_that_is_gone_can_be_removed(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """One left by an earlier version's race: DELETE …/schedule answered 'pipeline 6 not found'."""
    pipeline_id = await add_pipeline("orphaned")
    assert (await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)).is_success
    await _remove_rows(pipeline_id)
    removed = await client.delete(f"/api/pipelines/{pipeline_id}/schedule")
    assert (removed.status_code, in_prefect) == (204, {})
    again = await client.delete(f"/api/pipelines/{pipeline_id}/schedule")
    assert (again.status_code, again.json()["detail"]) == (
        404,
        f"pipeline {pipeline_id} not found",
    )
