"""GET /api/pipelines/{id}/logs in-process, with Prefect really unreachable (port 9)."""

import socket
import uuid

import httpx

from app import db
from app.models import PipelineRun, Status
from tests.conftest import SetSetting

UNREACHABLE = (
    "Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
    "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
)


async def test_unknown_pipeline_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/pipelines/424242/logs")
    assert (response.status_code, response.json()) == (
        404,
        {"message": "pipeline 424242 not found", "detail": "pipeline 424242 not found"},
    )


async def test_no_logs_before_the_first_run(client: httpx.AsyncClient) -> None:
    pipeline = (await client.post("/api/pipelines", json={"name": "idle"})).json()
    response = await client.get(f"/api/pipelines/{pipeline['id']}/logs")
    assert (response.status_code, response.json()) == (200, [])


async def test_prefect_down_is_a_503_that_says_what_to_do(client: httpx.AsyncClient) -> None:
    pipeline = (await client.post("/api/pipelines", json={"name": "ran once"})).json()
    async with db.get_sessionmaker()() as session, session.begin():
        session.add(
            PipelineRun(
                pipeline_id=pipeline["id"],
                record_count=10,
                status=Status.COMPLETED,
                prefect_flow_run_id=str(uuid.uuid4()),
            )
        )
    response = await client.get(f"/api/pipelines/{pipeline['id']}/logs")
    assert (response.status_code, response.json()) == (
        503,
        {"message": UNREACHABLE, "detail": UNREACHABLE},
    )


async def test_limit_is_checked(client: httpx.AsyncClient) -> None:
    pipeline = (await client.post("/api/pipelines", json={"name": "limits"})).json()
    response = await client.get(f"/api/pipelines/{pipeline['id']}/logs?limit=201")
    assert response.status_code == 422
    assert response.json()["message"] == "limit: must be at most 200; got 201"


async def test_a_prefect_that_never_answers_is_a_503_after_one_timeout(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    """Prefect's client retries a read that times out for about two minutes; the dashboard's log
    tail polled it every second."""
    pipeline = (await client.post("/api/pipelines", json={"name": "hung"})).json()
    async with db.get_sessionmaker()() as session, session.begin():
        session.add(
            PipelineRun(
                pipeline_id=pipeline["id"],
                record_count=10,
                status=Status.RUNNING,
                prefect_flow_run_id=str(uuid.uuid4()),
            )
        )
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        setting("PIPELINE_PREFECT_TIMEOUT_SECONDS", "0.5")
        setting("PREFECT_API_URL", url)
        response = await client.get(f"/api/pipelines/{pipeline['id']}/logs?tail=true")
    silence = (
        f"Prefect API at {url} did not answer within 0.5 s "
        "(PIPELINE_PREFECT_TIMEOUT_SECONDS); check the Prefect server's log and its database."
    )
    assert (response.status_code, response.json()) == (503, {"message": silence, "detail": silence})


async def test_an_offset_past_what_prefect_takes_is_a_422(client: httpx.AsyncClient) -> None:
    """Was Prefect's 500, answered as an outage (503)."""
    pipeline = (await client.post("/api/pipelines", json={"name": "paged"})).json()
    response = await client.get(f"/api/pipelines/{pipeline['id']}/logs", params={"offset": 2**31})
    assert (response.status_code, response.json()["message"]) == (
        422,
        "offset: must be at most 2,147,483,647; got 2,147,483,648",
    )
