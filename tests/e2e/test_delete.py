"""Deleting a pipeline on the real stack: its schedule leaves Prefect, its rows and files go."""

from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from app.pipeline.schedules import schedule_slug
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import wait_for_final

# The delete's SQL is tested on both backends in tests/api/test_delete.py; here the production
# topology (PostgreSQL) with a real Prefect server.
pytestmark = pytest.mark.parametrize("running_stack", ["postgresql"], indirect=True)

UPLOAD = "id,name,category,value,quantity,is_active,created_at\n1,a,A,100,2,true,2026-03-01\n"


async def test_delete_removes_the_schedule_the_rows_and_the_files(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    created = await api.post(
        "/api/pipelines",
        data={"name": "to delete", "trigger": "true"},
        files={"file": ("orders.csv", UPLOAD.encode(), "text/csv")},
    )
    pipeline = created.json()
    pid, upload = pipeline["id"], Path(pipeline["input_path"])
    first = (await wait_for_final(api, pid))["latest_run"]
    await api.post(f"/api/pipelines/{pid}/trigger")
    second = (await wait_for_final(api, pid))["latest_run"]
    assert (first["status"], second["status"]) == ("completed", "completed")
    schedule = await api.put(f"/api/pipelines/{pid}/schedule", json={"interval_seconds": 3600})
    assert schedule.status_code == 200
    run_dirs = [stack.data_dir / "runs" / str(run["id"]) for run in (first, second)]
    assert [path.is_dir() for path in [*run_dirs, upload.parent]] == [True, True, True]

    deleted = await api.delete(f"/api/pipelines/{pid}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    gone = await api.get(f"/api/pipelines/{pid}")
    message = f"pipeline {pid} not found"
    assert (gone.status_code, gone.json()) == (404, {"message": message, "detail": message})
    assert [path.exists() for path in [*run_dirs, upload.parent]] == [False, False, False]
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    slugs = [s.slug for s in await prefect.read_deployment_schedules(deployment.id)]
    assert schedule_slug(pid) not in slugs
    assert pid not in [s["pipeline_id"] for s in (await api.get("/api/schedules")).json()]
    again = await api.delete(f"/api/pipelines/{pid}")
    assert again.status_code == 404
