"""GET /api/pipelines/{id}/runs/{run_id}: one run with its stages, as the runs list gives it."""

import httpx

from app.models import Status
from tests.support.rows import add_pipeline, add_run


async def test_one_run_is_the_runs_lists_item(client: httpx.AsyncClient) -> None:
    first = await add_pipeline("first")
    other = await add_pipeline("other")
    old = await add_run(first, Status.FAILED, {}, error="ingest: boom")
    await add_run(first, Status.COMPLETED, {})
    theirs = await add_run(other, Status.COMPLETED, {})

    listed = (await client.get(f"/api/pipelines/{first}/runs")).json()["items"]
    read = await client.get(f"/api/pipelines/{first}/runs/{old}")
    assert (read.status_code, read.json()) == (200, listed[1])
    assert (read.json()["id"], read.json()["status"], read.json()["error"]) == (
        old,
        "failed",
        "ingest: boom",
    )
    assert [stage["name"] for stage in read.json()["stages"]] == [
        "generate",
        "ingest",
        "process",
        "transform",
        "export",
    ]

    elsewhere = await client.get(f"/api/pipelines/{first}/runs/{theirs}")
    assert (elsewhere.status_code, elsewhere.json()["message"]) == (
        404,
        f"run {theirs} not found in pipeline {first}",
    )
    missing = await client.get("/api/pipelines/99/runs/1")
    assert (missing.status_code, missing.json()["message"]) == (404, "pipeline 99 not found")
