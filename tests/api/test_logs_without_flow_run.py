"""GET /api/pipelines/{id}/logs of a run that never reached Prefect (no flow run): a cancelled
one had no lines at all, not even the service's line every cancelled run's lines end with."""

from datetime import UTC, datetime

import httpx

from app.models import Status
from tests.support.rows import add_pipeline, add_run

CANCELLED_AT = datetime(2026, 11, 27, 23, 19, 49, tzinfo=UTC)


async def test_a_cancelled_run_that_never_reached_prefect_has_the_line_alone(
    client: httpx.AsyncClient,
) -> None:
    pipeline_id = await add_pipeline("early")
    run_id = await add_run(
        pipeline_id,
        Status.CANCELLED,
        {},
        error="cancelled through the API",
        completed_at=CANCELLED_AT,
    )
    url = f"/api/pipelines/{pipeline_id}/logs"
    alone = {
        "id": f"run-{run_id}-cancelled",
        "timestamp": "2026-11-27T23:19:49Z",
        "level": "INFO",
        "logger": "pipeline",
        "message": f"run {run_id} cancelled through the API",
        "task_run_id": None,
    }
    assert (await client.get(url)).json() == [alone]
    assert (await client.get(url, params={"limit": 1, "tail": "true"})).json() == [alone]
    # paged past it: nothing more
    assert (await client.get(url, params={"offset": 1})).json() == []
    assert (await client.get(url, params={"offset": 1, "tail": "true"})).json() == []


async def test_a_run_waiting_for_prefect_has_no_lines_yet(client: httpx.AsyncClient) -> None:
    pipeline_id = await add_pipeline("waiting")
    await add_run(pipeline_id, Status.PENDING, {})
    assert (await client.get(f"/api/pipelines/{pipeline_id}/logs")).json() == []
