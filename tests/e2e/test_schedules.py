"""Schedules carried out by Prefect: scheduled runs become runs of the pipeline; pause, resume and
a Prefect server restart keep them as they were."""

import asyncio
import time
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from tests.e2e.conftest import RunningStack

# Process faults and schedules do not depend on the database backend: these run on the production
# topology (PostgreSQL for the service and the Prefect server) only; tests/api covers both backends.
pytestmark = pytest.mark.parametrize("running_stack", ["postgresql"], indirect=True)


async def _completed_runs(api: httpx.AsyncClient, pipeline_id: int, at_least: int) -> list[Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = (await api.get(f"/api/pipelines/{pipeline_id}/runs")).json()["items"]
        done = [run for run in runs if run["status"] == "completed"]
        if len(done) >= at_least:
            return done
        await asyncio.sleep(0.5)
    raise AssertionError(f"pipeline {pipeline_id}: fewer than {at_least} completed scheduled runs")


async def _future_runs(prefect: PrefectClient, pipeline_id: int) -> int:
    flow_runs = await prefect.read_flow_runs(
        deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["data-pipeline-deployment"])
        ),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
    )
    return sum(1 for run in flow_runs if run.parameters.get("pipeline_id") == pipeline_id)


async def test_schedule_runs_pause_resume_and_survives_a_server_restart(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    pipeline = (
        await api.post("/api/pipelines", json={"name": "nightly", "record_count": 10})
    ).json()
    pid = pipeline["id"]
    created = await api.put(
        f"/api/pipelines/{pid}/schedule",
        json={"interval_seconds": 10, "timezone": "Europe/Paris"},
    )
    assert created.status_code == 200
    schedule = created.json()
    assert {
        k: schedule[k] for k in ("pipeline_id", "cron", "interval_seconds", "timezone", "active")
    } == {
        "pipeline_id": pid,
        "cron": None,
        "interval_seconds": 10.0,
        "timezone": "Europe/Paris",
        "active": True,
    }
    listed = (await api.get("/api/schedules")).json()
    assert [s["pipeline_id"] for s in listed if s["pipeline_id"] == pid] == [pid]

    run = (await _completed_runs(api, pid, at_least=1))[0]
    flow_run = await prefect.read_flow_run(UUID(run["prefect_flow_run_id"]))
    assert flow_run.auto_scheduled is True
    assert flow_run.parameters == {"pipeline_id": pid, "record_count": 10}
    assert [s["status"] for s in run["stages"]] == ["completed"] * 5

    paused = await api.post(f"/api/pipelines/{pid}/schedule/pause")
    assert (paused.status_code, paused.json()["active"]) == (200, False)
    assert await _future_runs(prefect, pid) == 0

    stack.stack.stop_process("prefect-server")
    await asyncio.to_thread(stack.stack.start_server)
    after_restart = (await api.get(f"/api/pipelines/{pid}/schedule")).json()
    assert (after_restart["schedule_id"], after_restart["active"]) == (
        schedule["schedule_id"],
        False,
    )

    resumed = await api.post(f"/api/pipelines/{pid}/schedule/resume")
    assert (resumed.status_code, resumed.json()["active"]) == (200, True)
    swapped = await api.put(
        f"/api/pipelines/{pid}/schedule", json={"cron": "0 6 * * 1-5", "timezone": "UTC"}
    )
    assert {k: swapped.json()[k] for k in ("schedule_id", "cron", "interval_seconds")} == {
        "schedule_id": schedule["schedule_id"],
        "cron": "0 6 * * 1-5",
        "interval_seconds": None,
    }
    assert (await api.delete(f"/api/pipelines/{pid}/schedule")).status_code == 204
    gone = await api.get(f"/api/pipelines/{pid}/schedule")
    assert (gone.status_code, gone.json()["detail"]) == (
        404,
        f"pipeline {pid} has no schedule; set one with PUT /api/pipelines/{pid}/schedule",
    )
