"""A schedule set, paused or resumed while another request removes it (a DELETE of the schedule
or of its pipeline), through the real app/pipeline/schedules.py: a PUT racing a pipeline's
DELETE answered 500 (`assert created is not None`) in 3 of 10 tries."""

from typing import Any

import httpx
import pytest
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from sqlalchemy import delete

from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline import schedules
from tests.support.prefect_schedules import FakePrefect, prefect  # noqa: F401 (a fixture)
from tests.support.rows import add_pipeline

HOURLY = {"interval_seconds": 3600}


async def _remove_rows(pipeline_id: int) -> None:
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))


def _removing(fake: FakePrefect, pipeline_id: int, *, rows: bool) -> Any:
    """What a racing DELETE does in Prefect (and, with `rows`, in the database) at that moment."""

    async def step() -> None:
        fake.schedules.pop(schedules.schedule_slug(pipeline_id), None)
        if rows:
            await _remove_rows(pipeline_id)

    return step


async def test_a_pipeline_deleted_while_its_schedule_is_set_is_a_404_and_leaves_nothing(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811 (the fixture imported above)
) -> None:
    """The DELETE of the pipeline, whole, between the PUT's create and its read back."""
    pipeline_id = await add_pipeline("raced")

    async def deleted() -> None:
        assert (await client.delete(f"/api/pipelines/{pipeline_id}")).status_code == 204

    prefect.before["schedule runs"] = [deleted]
    response = await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)
    assert (response.status_code, response.json()["detail"]) == (
        404,
        f"pipeline {pipeline_id} was deleted while its schedule was being set; "
        "the schedule was removed again",
    )
    assert prefect.slugs() == []


async def test_a_schedule_removed_before_the_pipeline_rows_is_a_404_and_leaves_nothing(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    """The DELETE removed the new schedule before it deleted the rows: the PUT, finding its
    pipeline still there, sets it again; the DELETE then deletes the rows and sweeps."""
    pipeline_id = await add_pipeline("raced")
    prefect.before["schedule runs"] = [
        _removing(prefect, pipeline_id, rows=False),
        _removing(prefect, pipeline_id, rows=True),
    ]
    response = await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)
    assert (response.status_code, response.json()["detail"]) == (
        404,
        f"pipeline {pipeline_id} was deleted while its schedule was being set; "
        "the schedule was removed again",
    )
    assert (prefect.slugs(), prefect.calls.count("create")) == ([], 2)


async def test_a_put_racing_a_delete_of_the_schedule_sets_it_as_if_it_came_later(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    pipeline_id = await add_pipeline("raced")
    prefect.before["schedule runs"] = [_removing(prefect, pipeline_id, rows=False)]
    response = await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)
    slug = schedules.schedule_slug(pipeline_id)
    assert (response.status_code, response.json()["schedule_id"]) == (
        200,
        str(prefect.schedules[slug].id),
    )
    assert prefect.slugs() == [slug]
    assert prefect.schedules[slug].parameters == {"pipeline_id": pipeline_id, "record_count": 1000}


async def test_a_schedule_removed_before_it_is_replaced_is_made_again(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    """Prefect answered the replacing PATCH 404 (the schedule just removed): a 500."""
    pipeline_id = await add_pipeline("raced")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    assert (await client.put(path, json={"cron": "0 6 * * *"})).status_code == 200
    prefect.before["update"] = [_removing(prefect, pipeline_id, rows=False)]
    response = await client.put(path, json=HOURLY)
    assert response.status_code == 200, response.text
    [kept] = prefect.schedules.values()
    assert isinstance(kept.schedule, IntervalSchedule)
    assert (response.json()["interval_seconds"], kept.schedule.interval.total_seconds()) == (
        3600,
        3600.0,
    )


async def test_a_put_that_loses_every_race_says_so(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline_id = await add_pipeline("raced")
    tries: list[int] = []

    async def removed_each_time(*, pipeline_id: int, **_: Any) -> None:
        tries.append(pipeline_id)

    monkeypatch.setattr(schedules, "set_pipeline_schedule", removed_each_time)
    response = await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=HOURLY)
    assert (response.status_code, response.json()["detail"], tries) == (
        409,
        f"pipeline {pipeline_id}'s schedule was removed by other requests each time this one set "
        f"it; see whether it has one with GET /api/pipelines/{pipeline_id}/schedule, and set it "
        f"again with PUT /api/pipelines/{pipeline_id}/schedule",
        [pipeline_id, pipeline_id],
    )


@pytest.mark.parametrize("action", ["pause", "resume"])
@pytest.mark.parametrize("removed_before", ["read", "update"])
async def test_a_pause_or_resume_racing_the_pipeline_s_delete_says_it_is_not_found(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811
    action: str,
    removed_before: str,
) -> None:
    """It said "pipeline 27 has no schedule; set one with PUT …" of a pipeline that was gone
    (removed before the read), or answered 500 (before the PATCH: Prefect's 404)."""
    pipeline_id = await add_pipeline("raced")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    assert (await client.put(path, json={"cron": "0 6 * * *"})).status_code == 200
    prefect.before[removed_before] = [_removing(prefect, pipeline_id, rows=True)]
    response = await client.post(f"{path}/{action}")
    assert (response.status_code, response.json()["detail"]) == (
        404,
        f"pipeline {pipeline_id} not found",
    )
    assert prefect.slugs() == []


async def test_a_resume_racing_a_delete_of_the_schedule_says_there_is_none(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    pipeline_id = await add_pipeline("kept")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    await client.put(path, json={"cron": "0 6 * * *", "active": False})
    assert isinstance(next(iter(prefect.schedules.values())).schedule, CronSchedule)
    prefect.before["update"] = [_removing(prefect, pipeline_id, rows=False)]
    response = await client.post(f"{path}/resume")
    assert (response.status_code, response.json()["detail"]) == (
        404,
        f"pipeline {pipeline_id} has no schedule; set one with PUT /api/pipelines/{pipeline_id}/schedule",
    )
