"""Fault tests on the real stack: cancel, retry, a killed worker, Prefect down, racing triggers."""

import asyncio
import os
import signal
import time
from datetime import timedelta
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.states import Cancelled, Cancelling, Scheduled

from app.db import get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline import orchestrator
from app.pipeline.flows import STOPPED_WITHOUT_CANCEL
from app.pipeline.pool import pool_health
from app.pipeline.status import CANCELLED_IN_PREFECT, flow_run_key, run_tag
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import (
    add_run_row,
    child_pids,
    start_with_env,
    wait_for_final,
    wait_for_flow_run,
    wait_for_stage,
)

# Process faults and schedules do not depend on the database backend: these run on the production
# topology (PostgreSQL for the service and the Prefect server) only; tests/api covers both backends.
pytestmark = pytest.mark.parametrize("running_stack", ["postgresql"], indirect=True)

HOLD_GENERATE = {"PIPELINE_STAGE_DELAY": "generate:60"}


async def test_cancel_a_running_run_then_retry_it(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    pipeline_id, flow_run_id = await start_with_env(api, prefect, HOLD_GENERATE, "to-cancel")
    await wait_for_stage(api, pipeline_id, "generate", "running")

    cancelled = await api.post(f"/api/pipelines/{pipeline_id}/cancel")
    assert cancelled.status_code == 202
    run = cancelled.json()
    assert (run["status"], run["error"]) == ("cancelled", "cancelled through the API")
    assert [s["status"] for s in run["stages"]] == ["cancelled"] * 5
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_cancelled()
    again = await api.post(f"/api/pipelines/{pipeline_id}/cancel")
    assert (again.status_code, again.json()["id"]) == (202, run["id"])

    retried = await api.post(f"/api/pipelines/{pipeline_id}/retry")
    assert retried.status_code == 202
    assert retried.json()["prefect_flow_run_id"] != flow_run_id
    assert (await wait_for_final(api, pipeline_id))["status"] == "completed"
    runs = (await api.get(f"/api/pipelines/{pipeline_id}/runs")).json()["items"]
    assert [r["status"] for r in runs] == ["completed", "cancelled"]
    assert [s["status"] for s in runs[1]["stages"]] == ["cancelled"] * 5  # history untouched
    finished = await api.post(f"/api/pipelines/{pipeline_id}/cancel")
    assert finished.status_code == 409


async def test_a_run_cancelled_in_the_prefect_ui_says_so(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    pipeline_id, flow_run_id = await start_with_env(api, prefect, HOLD_GENERATE, "ui-cancel")
    await wait_for_stage(api, pipeline_id, "generate", "running")

    await prefect.set_flow_run_state(UUID(flow_run_id), Cancelling(), force=True)  # the UI's button
    body = await wait_for_final(api, pipeline_id)
    run = body["latest_run"]
    assert (run["status"], run["error"]) == ("cancelled", CANCELLED_IN_PREFECT)
    assert [s["status"] for s in run["stages"]] == ["cancelled"] * 5
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_cancelled()


async def test_a_run_stopped_without_a_cancel_fails_and_says_so(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """An operator's kill, or systemd stopping the host's services: a SIGTERM with no cancel in
    Prefect, which marks the run Crashed. The run once said "cancelled … through the API or the
    Prefect UI"."""
    pipeline_id, flow_run_id = await start_with_env(api, prefect, HOLD_GENERATE, "sigterm")
    await wait_for_stage(api, pipeline_id, "generate", "running")
    launcher = None
    for _ in range(100):  # the worker records it once the process has started: by now, or soon
        launcher = (await prefect.read_flow_run(UUID(flow_run_id))).infrastructure_pid
        if launcher is not None:
            break
        await asyncio.sleep(0.1)
    assert launcher is not None
    os.kill(int(launcher), signal.SIGTERM)  # the process the worker watches: it passes it on
    run = (await wait_for_final(api, pipeline_id))["latest_run"]
    assert (run["status"], run["error"]) == ("failed", STOPPED_WITHOUT_CANCEL)
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_crashed()


async def test_racing_triggers_with_one_idempotency_key_make_one_flow_run(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    pipeline = (await api.post("/api/pipelines", json={"name": "racy", "record_count": 10})).json()
    responses = await asyncio.gather(
        *(
            api.post(
                f"/api/pipelines/{pipeline['id']}/trigger", headers={"Idempotency-Key": "once"}
            )
            for _ in range(8)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({(r.json()["run_id"], r.json()["prefect_flow_run_id"]) for r in responses}) == 1
    run_id = responses[0].json()["run_id"]
    flow_runs = await prefect.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"pipeline-run:{run_id}"]))
    )
    assert len(flow_runs) == 1
    assert (await wait_for_final(api, pipeline["id"]))["status"] == "completed"
    runs = (await api.get(f"/api/pipelines/{pipeline['id']}/runs")).json()
    assert runs["total"] == 1


async def test_racing_creates_with_one_idempotency_key_share_the_first_run(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """Create-and-trigger sent 8 times at once with one key: one pipeline, one run, one flow
    run, and every answer shows that run (none says "created" with no run)."""
    responses = await asyncio.gather(
        *(
            api.post(
                "/api/pipelines",
                json={"name": "racy-create", "record_count": 10, "trigger": True},
                headers={"Idempotency-Key": "create-once"},
            )
            for _ in range(8)
        )
    )
    assert {r.status_code for r in responses} == {201}
    shown = {
        (
            r.json()["id"],
            r.json()["latest_run"]["id"],
            r.json()["latest_run"]["prefect_flow_run_id"],
        )
        for r in responses
    }
    assert len(shown) == 1
    (pipeline_id, run_id, flow_run_id) = shown.pop()
    assert flow_run_id is not None
    flow_runs = await prefect.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"pipeline:{pipeline_id}"]))
    )
    assert [str(f.id) for f in flow_runs] == [flow_run_id]
    assert (await wait_for_final(api, pipeline_id))["latest_run"]["id"] == run_id


async def test_killed_worker_fails_its_run_and_a_retry_completes(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    pipeline_id, flow_run_id = await start_with_env(api, prefect, HOLD_GENERATE, "doomed-worker")
    await wait_for_stage(api, pipeline_id, "generate", "running")
    worker = next(p for p in stack.stack.processes if p.name.startswith("worker-"))
    victims = [worker.popen.pid, *child_pids(worker.popen.pid)]  # its zygote and launchers
    assert len(victims) >= 2, "the worker should be running the flow-run process"
    killed_at = time.monotonic()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    stack.stack.stop_process(worker.name)
    try:
        body = await wait_for_final(api, pipeline_id, within=60)
    finally:  # the shared stack's next tests need a worker, whatever this one found
        stack.stack.start_worker(int(worker.name.split("-")[1]) + 10)
    settled_after = time.monotonic() - killed_at
    print(f"[{stack.backend}] killed worker: run settled after {settled_after:.1f} s")
    run = body["latest_run"]
    # the run gets SIGTERM twice, from its zygote (stopping its runs as the worker died) and from
    # the kernel as the zygote dies (PR_SET_PDEATHSIG): it takes the first as its stop and says
    # so. The second once cut that write short, and the watchdog failed the run later instead,
    # from Prefect's Crashed or from its heartbeat's age (app/pipeline/warm_start/forked_run.py)
    assert (run["status"], run["error"]) == ("failed", STOPPED_WITHOUT_CANCEL)
    # generate was running when its process was stopped: it failed with its run, saying why
    assert [(s["status"], s["message"], s["error"]) for s in run["stages"]] == [
        ("failed", None, STOPPED_WITHOUT_CANCEL),
        *[("cancelled", "not run: an earlier stage failed", None)] * 4,
    ]
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_crashed()

    assert (await api.post(f"/api/pipelines/{pipeline_id}/retry")).status_code == 202
    assert (await wait_for_final(api, pipeline_id, within=60))["status"] == "completed"


async def test_a_worker_that_stops_is_no_longer_live_at_once(stack: RunningStack) -> None:
    """Prefect counts a worker online until its heartbeat is 90 s old: `pipeline doctor` and
    the watchdog counted a worker stopped (a deploy, a scale-down) as live that long. A worker
    says it stops, as it stops."""
    extra = stack.stack.start_worker(77)
    name = f"worker-77-{os.getpid()}"
    deadline = time.monotonic() + 30
    while name not in (await pool_health()).live_workers:
        assert time.monotonic() < deadline, f"{name} not live after 30 s"
        await asyncio.sleep(0.5)
    stopped_at = time.monotonic()
    stack.stack.stop_process(extra.name)
    while name in (live := (await pool_health()).live_workers):
        assert time.monotonic() - stopped_at < 15, f"{name} still live 15 s after it stopped"
        await asyncio.sleep(0.5)
    print(
        f"[{stack.backend}] a stopped worker left the live ones after {time.monotonic() - stopped_at:.1f} s"
    )
    assert live  # the stack's own worker is still there


async def test_prefect_down_is_a_503_and_the_same_trigger_works_when_it_is_back(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    pipeline = (
        await api.post("/api/pipelines", json={"name": "outage", "record_count": 10})
    ).json()
    stack.stack.stop_process("prefect-server")
    try:
        down = await api.post(f"/api/pipelines/{pipeline['id']}/trigger")
        assert down.status_code == 503
        assert down.json()["detail"] == (
            f"Prefect API at {stack.stack.prefect_api_url} is unreachable (ConnectError). "
            "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
        )
        assert (await api.get(f"/api/pipelines/{pipeline['id']}/runs")).json()["total"] == 0
        ready = (await api.get("/ready")).json()
        assert ready["ready"] is False
    finally:
        await asyncio.to_thread(stack.stack.start_server)
    back = await api.post(f"/api/pipelines/{pipeline['id']}/trigger")
    assert back.status_code == 202
    assert (await wait_for_final(api, pipeline["id"], within=90))["status"] == "completed"
    # our rows are written before Prefect records Completed: wait for Prefect's final state
    flow_run = await wait_for_flow_run(prefect, back.json()["prefect_flow_run_id"])
    assert flow_run.state is not None and flow_run.state.is_completed()


async def test_a_flow_run_whose_id_was_never_written_back_is_adopted(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """The API process stopped between creating a run's flow run and writing its id: once no
    trigger can still be under way, the watchdog finds the flow run by its run tag instead of
    failing the run as a trigger that never reached Prefect."""
    pipeline = (
        await api.post("/api/pipelines", json={"name": "orphan", "record_count": 10})
    ).json()
    # the run below is 10 minutes old: with no live worker yet it would fail as unstartable
    deadline = time.monotonic() + 30
    while not any(
        w.last_heartbeat_time for w in await prefect.read_workers_for_work_pool("default")
    ):
        assert time.monotonic() < deadline, "no worker heartbeat after 30 s"
        await asyncio.sleep(0.5)
    # past the trigger's 134 s deadline
    run = await add_run_row(
        pipeline["id"], Status.PENDING, created_at=utcnow() - timedelta(minutes=10)
    )
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    flow_run = await prefect.create_flow_run_from_deployment(
        deployment.id,
        parameters={"pipeline_id": pipeline["id"], "record_count": 10},
        tags=[run_tag(run.id)],
        idempotency_key=flow_run_key(run.id, run.created_at),  # as its trigger made it
        state=Scheduled(scheduled_time=utcnow() + timedelta(hours=1)),  # no worker takes it yet
    )
    deadline = time.monotonic() + 30
    latest = (await api.get(f"/api/pipelines/{pipeline['id']}")).json()["latest_run"]
    while latest["prefect_flow_run_id"] is None and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        latest = (await api.get(f"/api/pipelines/{pipeline['id']}")).json()["latest_run"]
    assert (latest["id"], latest["status"], latest["error"]) == (run.id, "pending", None)
    assert latest["prefect_flow_run_id"] == str(flow_run.id)

    cancelled = await api.post(f"/api/pipelines/{pipeline['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (202, "cancelled")
    final = await wait_for_flow_run(prefect, str(flow_run.id))
    assert final.state is not None and final.state.is_cancelled()


async def test_a_cancel_that_wins_the_race_with_its_trigger_starts_nothing(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """The cancel came while the trigger was creating the flow run (so it had no flow run to stop
    in Prefect): the flow run, once a worker starts it, runs no stage and ends Cancelled."""
    pipeline = (await api.post("/api/pipelines", json={"name": "raced", "record_count": 10})).json()
    run = await add_run_row(pipeline["id"], Status.PENDING)
    cancelled = await api.post(f"/api/pipelines/{pipeline['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (202, "cancelled")
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    flow_run = await prefect.create_flow_run_from_deployment(  # the trigger, finishing late
        deployment.id,
        parameters={"pipeline_id": pipeline["id"], "record_count": 10},
        tags=[run_tag(run.id)],
    )
    final = await wait_for_flow_run(prefect, str(flow_run.id))
    assert final.state is not None and final.state.is_cancelled()
    assert final.state.message == (
        f"run {run.id} was cancelled before its flow run started (cancelled through the API)"
    )
    latest = (await api.get(f"/api/pipelines/{pipeline['id']}")).json()["latest_run"]
    assert (latest["status"], latest["error"]) == ("cancelled", "cancelled through the API")
    assert [(s["status"], s["started_at"]) for s in latest["stages"]] == [("cancelled", None)] * 5


async def test_cancelling_a_flow_run_deleted_in_prefect_leaves_nothing_to_stop(
    prefect: PrefectClient,
) -> None:
    assert await orchestrator.cancel_flow_run(str(uuid4())) is None


async def test_racing_retries_of_one_failed_run_make_one_new_run(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """A double-clicked Retry: requests that saw the run failed all get one new run (one flow
    run); a request that came after it was made is a 409, as the new run is not failed."""
    pipeline = (await api.post("/api/pipelines", json={"name": "twice", "record_count": 10})).json()
    await add_run_row(pipeline["id"], Status.FAILED, error="RuntimeError: boom")
    retries = await asyncio.gather(
        *(api.post(f"/api/pipelines/{pipeline['id']}/retry") for _ in range(8))
    )
    accepted = [r.json() for r in retries if r.status_code == 202]
    assert {r.status_code for r in retries} <= {202, 409}
    assert len({(r["run_id"], r["prefect_flow_run_id"]) for r in accepted}) == 1
    flow_runs = await prefect.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"pipeline:{pipeline['id']}"]))
    )
    assert len(flow_runs) == 1
    assert (await wait_for_final(api, pipeline["id"]))["status"] == "completed"
    runs = (await api.get(f"/api/pipelines/{pipeline['id']}/runs")).json()
    assert [r["status"] for r in runs["items"]] == ["completed", "failed"]


async def test_the_watchdog_reads_more_flow_runs_than_prefect_returns_at_once(
    api: httpx.AsyncClient, stack: RunningStack, prefect: PrefectClient
) -> None:
    """A backlog of more than 200 unfinished runs (a burst with no live worker): Prefect refuses
    a read of more than 200 flow runs, so the watchdog reads them in parts, not at all."""
    pipeline = (
        await api.post("/api/pipelines", json={"name": "backlog", "record_count": 10})
    ).json()
    run = (await api.post(f"/api/pipelines/{pipeline['id']}/trigger")).json()
    # another database's run of the same id on this Prefect server: the same tag, another key
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    decoy = await prefect.create_flow_run_from_deployment(
        deployment.id,
        parameters={"pipeline_id": pipeline["id"], "record_count": 10},
        tags=[run_tag(run["run_id"])],
        idempotency_key=run_tag(run["run_id"]),
        state=Cancelled(),
    )
    async with get_sessionmaker()() as session:
        row = await session.get(PipelineRun, run["run_id"])
        assert row is not None
    unknown_runs = {n: flow_run_key(n, row.created_at) for n in range(10**6, 10**6 + 201)}
    found = await orchestrator.find_flow_runs(
        {**unknown_runs, run["run_id"]: flow_run_key(run["run_id"], row.created_at)}
    )
    assert found == {run["run_id"]: run["prefect_flow_run_id"]} != {run["run_id"]: str(decoy.id)}
    unknown_flow_runs = [str(uuid4()) for _ in range(orchestrator.READ_LIMIT + 1)]
    states = await orchestrator.read_flow_run_states(
        [*unknown_flow_runs, run["prefect_flow_run_id"]]
    )
    assert list(states) == [run["prefect_flow_run_id"]]
    await wait_for_final(api, pipeline["id"])
