"""Schedules carried out by Prefect: scheduled runs become runs of the pipeline; pause, resume and
a Prefect server restart keep them as they were."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType

from app.pipeline.schedules import SCHEDULE_STOPPED
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import deploy, next_daily

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
    return len(await _waiting(prefect, pipeline_id))


async def _waiting_for(prefect: PrefectClient, pipeline_id: int, at_least: int) -> list[FlowRun]:
    deadline = time.monotonic() + 30
    while len(waiting := await _waiting(prefect, pipeline_id)) < at_least:
        assert time.monotonic() < deadline, f"pipeline {pipeline_id}: no scheduled run waiting"
        await asyncio.sleep(0.25)
    return waiting


async def _waiting(prefect: PrefectClient, pipeline_id: int) -> list[FlowRun]:
    """The pipeline's runs in a Scheduled state (Scheduled, Late, AwaitingConcurrencySlot)."""
    flow_runs = await prefect.read_flow_runs(
        deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["data-pipeline-deployment"])
        ),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
    )
    return [run for run in flow_runs if run.parameters.get("pipeline_id") == pipeline_id]


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
        "interval_seconds": 10,
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
    # the runs the resumed schedule makes still name their pipeline (a PATCH of `active` alone
    # once left the schedule, and every run it made, with no parameters at all)
    waiting = await _waiting_for(prefect, pid, at_least=1)
    assert {tuple(sorted(run.parameters.items())) for run in waiting} == {
        (("pipeline_id", pid), ("record_count", 10))
    }
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


async def test_a_schedule_read_back_is_sent_back_unchanged(api: httpx.AsyncClient) -> None:
    """Prefect answers the interval as 3600.0 s: the API read it back so, and PUT refused it
    ("interval_seconds: must be a whole number, like 1000, not 3600.0"); and each PUT moved the
    interval's anchor to its own time, so the runs were due later."""
    created = await api.post("/api/pipelines", json={"name": "hourly", "record_count": 10})
    path = f"/api/pipelines/{created.json()['id']}/schedule"
    sent = {"interval_seconds": 3600, "anchor_date": "2026-01-01T00:30:00Z", "timezone": "UTC"}
    assert (await api.put(path, json=sent)).status_code == 200
    read = await api.get(path)
    assert {key: read.json()[key] for key in (*sent, "cron", "active")} == {
        **sent,
        "cron": None,
        "active": True,
    }
    assert read.json()["next_run_at"].endswith(":30:00Z")

    again = await api.put(path, content=read.content, headers={"content-type": "application/json"})
    assert (again.status_code, again.json()) == (200, read.json())
    assert (await api.get(path)).json() == read.json()
    assert (await api.delete(path)).status_code == 204


async def test_changing_one_pipelines_schedule_keeps_the_others_upcoming_runs(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    # Prefect removes every future scheduled run of the deployment when any one of its schedules
    # changes; its scheduler would make them again only on its next loop (60 s here, as in
    # production), and a run due in between would never happen.
    daily = {"cron": "0 6 * * *", "timezone": "UTC"}
    ids = []
    for name in ("changed", "bystander"):
        pipeline = (
            await api.post("/api/pipelines", json={"name": name, "record_count": 10})
        ).json()
        assert (
            await api.put(f"/api/pipelines/{pipeline['id']}/schedule", json=daily)
        ).status_code == 200
        ids.append(pipeline["id"])
    changed, bystander = ids
    # Prefect makes at least 3 runs ahead (PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS)
    assert (await _future_runs(prefect, changed), await _future_runs(prefect, bystander)) == (3, 3)
    next_six = next_daily(6)
    listed = (await api.get("/api/schedules")).json()
    assert [(s["pipeline_id"], s["next_run_at"]) for s in listed] == [
        (changed, next_six.isoformat().replace("+00:00", "Z")),
        (bystander, next_six.isoformat().replace("+00:00", "Z")),
    ]

    paused = await api.post(f"/api/pipelines/{changed}/schedule/pause")
    assert (paused.status_code, paused.json()["next_run_at"]) == (200, None)
    assert (await _future_runs(prefect, changed), await _future_runs(prefect, bystander)) == (0, 3)

    assert (await api.post(f"/api/pipelines/{changed}/schedule/resume")).status_code == 200
    replaced = await api.put(f"/api/pipelines/{changed}/schedule", json={"cron": "0 7 * * *"})
    assert replaced.status_code == 200
    assert (await _future_runs(prefect, changed), await _future_runs(prefect, bystander)) == (3, 3)

    # deploying again (every `make up`, compose's init) keeps every pipeline's schedule and runs
    await deploy(stack.stack.process_env())
    assert [s["pipeline_id"] for s in (await api.get("/api/schedules")).json()] == [
        changed,
        bystander,
    ]
    assert (await _future_runs(prefect, changed), await _future_runs(prefect, bystander)) == (3, 3)

    assert (await api.delete(f"/api/pipelines/{changed}/schedule")).status_code == 204
    assert (await _future_runs(prefect, changed), await _future_runs(prefect, bystander)) == (0, 3)
    assert (await api.delete(f"/api/pipelines/{bystander}/schedule")).status_code == 204


STOPS = {
    "pause": ("POST", "/schedule/pause", None, 200),
    "put-inactive": ("PUT", "/schedule", {"cron": "*/10 * * * *", "active": False}, 200),
    "delete": ("DELETE", "/schedule", None, 204),
}


@pytest.mark.parametrize("stop", sorted(STOPS))
async def test_stopping_a_schedule_removes_the_pipelines_runs_already_due(
    api: httpx.AsyncClient, prefect: PrefectClient, stop: str
) -> None:
    # Prefect's own pause removes only runs due in the future; a run already due and not yet
    # taken by a worker (here: the pool is paused) would still start after the pause.
    pipeline = (await api.post("/api/pipelines", json={"name": "late", "record_count": 10})).json()
    pid = pipeline["id"]
    await prefect.update_work_pool("default", WorkPoolUpdate(is_paused=True))
    try:
        every_ten_minutes = {"cron": "*/10 * * * *", "timezone": "UTC"}
        assert (
            await api.put(f"/api/pipelines/{pid}/schedule", json=every_ten_minutes)
        ).status_code == 200
        # six runs that came due while no worker took them: at -60, -50, ... -10 minutes
        await _backfill(prefect, minutes_ago=(60, 10))
        now = datetime.now(UTC)
        due = [
            run
            for run in await _waiting(prefect, pid)
            if run.expected_start_time and run.expected_start_time < now
        ]
        assert len(due) == 6
        method, suffix, body, expected = STOPS[stop]
        stopped = await api.request(method, f"/api/pipelines/{pid}{suffix}", json=body)
        assert stopped.status_code == expected
        assert await _waiting(prefect, pid) == []
    finally:
        await prefect.update_work_pool("default", WorkPoolUpdate(is_paused=False))
        await api.delete(f"/api/pipelines/{pid}/schedule")


async def test_a_run_of_a_schedule_paused_from_the_prefect_ui_is_skipped(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    # Runs of a paused schedule can still reach a worker: those already due when it is paused in
    # the Prefect UI (which removes only future ones), or one Prefect's scheduler made while the
    # pause was under way. The flow checks its schedule before it starts anything.
    pipeline = (
        await api.post("/api/pipelines", json={"name": "ui-paused", "record_count": 10})
    ).json()
    pid = pipeline["id"]
    await prefect.update_work_pool("default", WorkPoolUpdate(is_paused=True))
    try:
        schedule = (
            await api.put(f"/api/pipelines/{pid}/schedule", json={"cron": "*/10 * * * *"})
        ).json()
        await _backfill(prefect, minutes_ago=(20, 10))
        deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
        await prefect.update_deployment_schedule(
            deployment.id, UUID(schedule["schedule_id"]), active=False
        )  # what the Prefect UI's toggle does
        due = await _waiting(prefect, pid)
        assert len(due) == 2
    finally:
        await prefect.update_work_pool("default", WorkPoolUpdate(is_paused=False))

    ended = [await _final(prefect, run.id) for run in due]
    assert [(run.state_type, run.state and run.state.message) for run in ended] == [
        (StateType.CANCELLED, SCHEDULE_STOPPED)
    ] * 2
    assert (await api.get(f"/api/pipelines/{pid}/runs")).json()["items"] == []
    assert (await api.delete(f"/api/pipelines/{pid}/schedule")).status_code == 204


async def _backfill(prefect: PrefectClient, *, minutes_ago: tuple[int, int]) -> None:
    """Have Prefect make the runs its active schedules had between those 10-minute marks."""
    mark = datetime.now(UTC).replace(second=0, microsecond=0)
    mark -= timedelta(minutes=mark.minute % 10)
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    earliest, latest = minutes_ago
    response = await prefect.request(
        "POST",
        "/deployments/{id}/schedule",
        path_params={"id": deployment.id},
        json={
            "start_time": (mark - timedelta(minutes=earliest)).isoformat(),
            "end_time": (mark - timedelta(minutes=latest)).isoformat(),
            "min_runs": 0,
        },
    )
    assert response.status_code == 200


async def _final(prefect: PrefectClient, flow_run_id: UUID) -> FlowRun:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        flow_run = await prefect.read_flow_run(flow_run_id)
        if flow_run.state and flow_run.state.is_final():
            return flow_run
        await asyncio.sleep(0.5)
    raise AssertionError(f"flow run {flow_run_id} did not end within 60 s")


async def test_racing_puts_of_one_pipelines_schedule_leave_one_schedule(
    api: httpx.AsyncClient,
) -> None:
    pipeline = (await api.post("/api/pipelines", json={"name": "raced", "record_count": 10})).json()
    pid = pipeline["id"]
    crons = [f"{minute} 6 * * *" for minute in range(4)]
    answers = await asyncio.gather(
        *(api.put(f"/api/pipelines/{pid}/schedule", json={"cron": cron}) for cron in crons)
    )
    assert [answer.status_code for answer in answers] == [200] * 4
    mine = [s for s in (await api.get("/api/schedules")).json() if s["pipeline_id"] == pid]
    # one schedule (Prefect's slugs are unique per deployment: a create that lost the race
    # became an update); which PUT ended last is the race's to decide
    assert len(mine) == 1 and mine[0]["cron"] in crons
    assert (await api.delete(f"/api/pipelines/{pid}/schedule")).status_code == 204
