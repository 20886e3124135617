"""A schedule whose pipeline no longer exists (left by a crash, a restored backup): the list
showed it as any other, and reading it said only "pipeline 999 not found". Now the list marks it
and both say how to remove it."""

import httpx
from sqlalchemy import delete

from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline import orchestrator
from tests.support.prefect_schedules import FakePrefect, prefect  # noqa: F401 (a fixture)
from tests.support.rows import add_pipeline

PAUSED = {"cron": "0 6 * * *", "timezone": "Europe/Paris", "active": False}


async def _remove_rows(pipeline_id: int) -> None:
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))


def _listed(fake: FakePrefect, pipeline_id: int, *, exists: bool) -> dict[str, object]:
    return {
        "pipeline_id": pipeline_id,
        "schedule_id": str(fake.schedules[f"pipeline-{pipeline_id}"].id),
        "cron": "0 6 * * *",
        "interval_seconds": None,
        "anchor_date": None,
        "timezone": "Europe/Paris",
        "day_or": True,
        "rrule": None,
        "active": False,
        "next_run_at": None,
        "pipeline_exists": exists,
    }


async def test_the_list_marks_a_schedule_whose_pipeline_is_gone_and_reading_it_says_so(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811 (the fixture imported above)
) -> None:
    kept, orphan = await add_pipeline("kept"), await add_pipeline("crashed")
    for pipeline_id in (kept, orphan):
        put = await client.put(f"/api/pipelines/{pipeline_id}/schedule", json=PAUSED)
        assert put.status_code == 200
    await _remove_rows(orphan)

    listed = await client.get("/api/schedules")
    assert (listed.status_code, listed.json()) == (
        200,
        [_listed(prefect, kept, exists=True), _listed(prefect, orphan, exists=False)],
    )
    read = await client.get(f"/api/pipelines/{orphan}/schedule")
    assert (read.status_code, read.json()["detail"]) == (
        404,
        f"pipeline {orphan} not found, but its schedule is still in Prefect, paused; remove it "
        f"with DELETE /api/pipelines/{orphan}/schedule",
    )  # it said "making runs" of a paused one too
    prefect.schedules[f"pipeline-{orphan}"].active = True
    active = await client.get(f"/api/pipelines/{orphan}/schedule")
    assert active.json()["detail"] == (
        f"pipeline {orphan} not found, but its schedule is still in Prefect, making runs that end "
        f"Cancelled without running anything; remove it with DELETE /api/pipelines/{orphan}/schedule"
    )
    prefect.schedules[f"pipeline-{orphan}"].active = False
    for method, path in [("POST", "pause"), ("POST", "resume"), ("PUT", "")]:
        written = await client.request(
            method,
            f"/api/pipelines/{orphan}/schedule/{path}".rstrip("/"),
            json=PAUSED if method == "PUT" else None,
        )
        assert (written.status_code, written.json()["detail"]) == (
            404,
            read.json()["detail"],
        ), path  # pause, resume and set said only "pipeline N not found"
    assert (await client.delete(f"/api/pipelines/{orphan}/schedule")).status_code == 204
    after = await client.get("/api/schedules")
    assert after.json() == [_listed(prefect, kept, exists=True)]
    gone = await client.get(f"/api/pipelines/{orphan}/schedule")
    assert (gone.status_code, gone.json()["detail"]) == (404, f"pipeline {orphan} not found")


async def test_a_listed_schedule_can_be_put_back_whole(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    """What the list answers, pipeline_exists too, is taken back like what GET answers."""
    pipeline_id = await add_pipeline("kept")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    first = await client.put(path, json=PAUSED)
    [listed] = (await client.get("/api/schedules")).json()
    again = await client.put(path, json=listed)
    assert (again.status_code, again.json()) == (200, first.json())
    assert {**again.json(), "pipeline_exists": True} == listed


async def test_a_missing_pipeline_with_prefect_down_is_still_a_404(
    client: httpx.AsyncClient,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    async def down() -> None:
        raise orchestrator.PrefectUnavailableError("Prefect API at … unreachable")

    prefect.before["read"] = [down]
    read = await client.get("/api/pipelines/999/schedule")
    assert (read.status_code, read.json()["detail"]) == (404, "pipeline 999 not found")
    assert prefect.calls == ["read"]
