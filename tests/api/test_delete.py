"""DELETE /api/pipelines/{id} with Prefect unreachable (port 9): what is refused, and that a
refusal deletes nothing. tests/e2e/test_delete.py deletes for real."""

import httpx

from app.models import Status
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
    assert (response.status_code, response.json()) == (404, {"detail": "pipeline 424242 not found"})
