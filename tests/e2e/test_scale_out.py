"""Scale-out without Docker: the compose topology as processes — PostgreSQL, a Prefect server on
PostgreSQL, three workers on pool `default` limited to two concurrent runs, and the API — and one
worker killed with SIGKILL half-way through.

What dies with a worker. Prefect 3.8.8's process worker starts each flow run as its own process in
a session of its own, so a lone `kill -9` of the worker leaves its flow-run processes running with a
broken log pipe: each then dies at its next console log line (rich raises SystemExit(1) on EPIPE,
and the run ends Crashed), or lives on when a background thread hits the pipe first — a coin toss.
In the compose topology the worker's container takes its flow-run processes with it, and that is
what this test does: SIGKILL to the worker and to the flow-run processes it started. Nothing in
Prefect then notices — the runs stay Running and keep their pool slots — until the API's watchdog
sees their heartbeats stop, fails them in our database and marks them Crashed in Prefect, which
frees the slots. The runs still Scheduled must all be run by the two survivors.

A run the worker had claimed (Pending) whose process had not yet started — or was still starting,
which under load takes most of a run's life here — would stay Pending, holding a pool slot, until
PIPELINE_QUEUED_TIMEOUT_SECONDS (an hour): Prefect has no lease on Pending runs and the watchdog
judges Pending runs only by their age. The test freezes the worker (SIGSTOP) and kills it only at
an instant where every run it holds is Running.

The pool limit alone is not a hard cap. Prefect 3.8.8 applies it when a worker polls: the poll
counts the pool's Pending and Running runs and locks the Scheduled runs it hands out with
`FOR UPDATE SKIP LOCKED`, so two workers polling at the same moment both see the free slot and get
*different* runs — three at once under a limit of two (seen with the pool limit alone; with the
deployment limit as well, 1 to 3 such claims were turned away in every run of this test). The hard
cap is the deployment's concurrency limit: a global concurrency slot taken atomically on the
transition to Pending, so an over-claimed run is sent back to Scheduled ("AwaitingConcurrencySlot")
before any process starts. The test sets both to 2, as production should.
"""

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolUpdate
from prefect.client.schemas.objects import FlowRun, StateType

from app.stack.processes import Process
from app.stack.topology import Stack
from tests.e2e.conftest import started_stack
from tests.e2e.helpers import child_pids
from tests.support.procs import alive

RUNS = 30
RECORDS = 1000
WORKERS = 3
POOL_LIMIT = 2
KILL_AFTER_COMPLETED = 6  # "mid-way": some runs done, most still to do
STAGES = ["generate", "ingest", "process", "transform", "export"]
FINAL = {"completed", "failed", "cancelled"}
DEAD_PROCESS = re.compile(
    r"its flow-run process stopped responding \(no heartbeat for \d+ s; worker or process killed\?\)"
)


@dataclass
class ScaleStack:
    stack: Stack
    workers: dict[str, Process]  # Prefect worker name -> its process


@pytest.fixture(scope="module")
def scale_stack(request: pytest.FixtureRequest, tmp_root: Path) -> Iterator[ScaleStack]:
    """Its own stack: own ports, own app database and Prefect database on the session's cluster."""
    env = {
        # A dead flow-run process is noticed within seconds rather than the production half minute.
        "PIPELINE_STALE_HEARTBEAT_SECONDS": "15",
        # An over-claimed run waits this long before it is offered again (Prefect's default: 30 s).
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
        # Runs stay Running for a few seconds (a warm-started 1,000-record run takes under one),
        # so there are instants when a worker holds only Running runs.
        "PIPELINE_STAGE_DELAY": "transform:2",
    }
    with started_stack(
        "postgresql", request, tmp_root, name="scale_out", workers=WORKERS, env=env
    ) as running:
        workers = {
            f"{p.name}-{os.getpid()}": p
            for p in running.stack.processes
            if p.name.startswith("worker-")
        }
        yield ScaleStack(running.stack, workers)


@pytest.fixture
async def prefect(scale_stack: ScaleStack) -> AsyncIterator[PrefectClient]:
    async with PrefectClient(api=scale_stack.stack.prefect_api_url) as client:
        yield client


@pytest.fixture
async def api(scale_stack: ScaleStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=scale_stack.stack.api_url, timeout=30) as http:
        yield http


def worker_of(run: FlowRun) -> str | None:
    """The worker that submitted this flow run: Prefect labels the run with the worker's name."""
    name = run.labels.get("prefect.worker.name")
    return str(name) if name is not None else None


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of [start, end) intervals covering one instant (a sweep over the ends)."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda event: (event[0], event[1]),  # an end before a start at the same instant
    )
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


async def flow_runs(prefect: PrefectClient) -> list[FlowRun]:
    return await prefect.read_flow_runs(limit=200)  # this server holds only this test's runs


@dataclass
class Kill:
    victim: str
    held: list[FlowRun]  # Running in the victim's flow-run processes when it died
    scheduled: list[FlowRun]  # not yet claimed by anyone when it died


def forked_by_zygote(worker_pid: int) -> list[int]:
    """The flow-run processes the worker's zygote has forked (children of its children)."""
    zygotes = [
        pid
        for pid in child_pids(worker_pid)
        if b"app.pipeline.warm_start.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return [child for zygote in zygotes for child in child_pids(zygote)]


def signal_group(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signum)  # a flow-run process leads a session (and group) of its own


def resume(worker: Process, flow_run_pids: list[int]) -> None:
    for pid in flow_run_pids:
        signal_group(pid, signal.SIGCONT)
    os.killpg(worker.popen.pid, signal.SIGCONT)


async def kill_a_worker_holding_runs(
    prefect: PrefectClient, api: httpx.AsyncClient, workers: dict[str, Process]
) -> Kill:
    """SIGKILL a worker and its flow-run processes — its container dying — while every run it
    holds is Running in Prefect and unfinished in our database.

    Pending is the dangerous state: a Pending run's process is not started, or still starting and
    not yet heartbeating, and nothing would ever move it on. So the victim is a worker with Running
    runs and no Pending one. It and its flow-run processes are frozen (SIGSTOP) first, so nothing
    moves while the instant is checked: no Pending run may be its own (a Pending run labelled with
    a survivor's name is the survivor's; the label comes a moment after the claim), and none of
    its runs may have finished in our database yet (a run killed in the moment between our final
    row and Prefect's Completed state would stay Running in Prefect — not the case under test).
    If the instant is not right, everything resumes (SIGCONT) and the search goes on.
    """
    deadline = time.monotonic() + 120
    seen: list[StateType | None] = []
    while time.monotonic() < deadline:
        runs = await flow_runs(prefect)
        seen = [r.state_type for r in runs]
        running = {worker_of(r) for r in runs if r.state_type == StateType.RUNNING}
        pending = {worker_of(r) for r in runs if r.state_type == StateType.PENDING}
        candidates = sorted(w for w in workers if w in running and w not in pending)
        if (
            seen.count(StateType.COMPLETED) < KILL_AFTER_COMPLETED
            or not candidates
            or None in pending
        ):
            await asyncio.sleep(0.2)
            continue
        victim = candidates[0]
        process = workers[victim]
        frozen = [
            int(r.infrastructure_pid)
            for r in runs
            if r.state_type == StateType.RUNNING
            and worker_of(r) == victim
            and r.infrastructure_pid is not None
        ]
        # the worker's group: the worker and its zygote; then, with the zygote stopped, the
        # flow-run processes forked from it and the launchers Prefect watches (each of them
        # leads a session and group of its own)
        os.killpg(process.popen.pid, signal.SIGSTOP)
        frozen += forked_by_zygote(process.popen.pid)
        for pid in frozen:
            signal_group(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(1.0)  # let the server finish any request they had sent
            runs = await flow_runs(prefect)
            held = [r for r in runs if r.state_type == StateType.RUNNING and worker_of(r) == victim]
            survivors = set(workers) - {victim}
            maybe_its_claims = [
                r
                for r in runs
                if r.state_type == StateType.PENDING and worker_of(r) not in survivors
            ]
            statuses = [
                (await api.get(f"/api/pipelines/{r.parameters['pipeline_id']}")).json()["status"]
                for r in held
            ]
            launchers = [int(str(r.infrastructure_pid)) for r in held]
            safe = (
                held
                and not maybe_its_claims
                and set(launchers) <= set(frozen)
                and len(frozen) == 2 * len(launchers)  # a forked process for each launcher
                and not FINAL.intersection(statuses)
            )
        except BaseException:
            resume(process, frozen)
            raise
        if safe:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(10)
            for pid in frozen:
                signal_group(pid, signal.SIGKILL)
            scheduled = [r for r in runs if r.state_type == StateType.SCHEDULED]
            return Kill(victim, held, scheduled)
        resume(process, frozen)  # not a safe instant: look again
        await asyncio.sleep(0.2)
    raise AssertionError(f"no instant to kill a worker holding only running runs; states: {seen}")


async def wait_all_final(api: httpx.AsyncClient, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        page = (await api.get("/api/pipelines", params={"page_size": 100})).json()
        if page["total"] == RUNS and all(p["status"] in FINAL for p in page["items"]):
            return
        await asyncio.sleep(1)
    raise AssertionError(f"not all {RUNS} pipelines final after {within} s: {page['items']}")


def interval(run: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """When the run held a pool slot, as far as our own timestamps see it: its first stage's start
    to its export's end, or to its end for a run that died (None if it died before any stage)."""
    first, last = run["stages"][0], run["stages"][-1]
    if first["started_at"] is None:
        return None
    end = last["completed_at"] if last["status"] == "completed" else run["completed_at"]
    return datetime.fromisoformat(first["started_at"]), datetime.fromisoformat(end)


@pytest.mark.timeout(600)  # ~3-4.5 min on a busy 2-core machine, stack start included
async def test_three_workers_share_thirty_runs_under_a_pool_limit_of_two_and_survive_a_kill(
    scale_stack: ScaleStack, prefect: PrefectClient, api: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    await prefect.update_work_pool("default", WorkPoolUpdate(concurrency_limit=POOL_LIMIT))
    assert (await prefect.read_work_pool("default")).concurrency_limit == POOL_LIMIT
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    await prefect.update_deployment(deployment.id, DeploymentUpdate(concurrency_limit=POOL_LIMIT))
    deployment = await prefect.read_deployment(deployment.id)
    assert deployment.global_concurrency_limit is not None
    assert deployment.global_concurrency_limit.limit == POOL_LIMIT

    pipeline_ids = []
    for number in range(RUNS):
        response = await api.post(
            "/api/pipelines",
            json={"name": f"scale-{number}", "record_count": RECORDS, "trigger": True},
        )
        assert response.status_code == 201, response.text
        pipeline_ids.append(response.json()["id"])

    kill = await kill_a_worker_holding_runs(prefect, api, scale_stack.workers)
    killed_at = time.monotonic()
    await wait_all_final(api, within=180)
    print(
        f"\nkilled {kill.victim} after {killed_at - started:.0f} s holding {len(kill.held)} "
        f"running, {len(kill.scheduled)} scheduled; all final after {time.monotonic() - started:.0f} s"
    )

    assert scale_stack.workers[kill.victim].popen.returncode == -signal.SIGKILL
    assert not [r.infrastructure_pid for r in kill.held if alive(int(str(r.infrastructure_pid)))]
    survivors = set(scale_stack.workers) - {kill.victim}
    runs = [(await api.get(f"/api/pipelines/{pid}")).json()["latest_run"] for pid in pipeline_ids]
    by_flow_run = {str(r.id): r for r in await flow_runs(prefect)}
    held = {str(r.id) for r in kill.held}

    # The runs the dead worker held: failed by the watchdog in our database, Crashed in Prefect,
    # no stage left running or pending.
    dead = [r for r in runs if r["prefect_flow_run_id"] in held]
    assert len(dead) == len(held)
    for run in dead:
        flow_run = by_flow_run[run["prefect_flow_run_id"]]
        assert run["status"] == "failed"
        assert DEAD_PROCESS.fullmatch(run["error"]), run["error"]
        # a stage running at the kill failed with its run (app/pipeline/status.py INTERRUPTED)
        assert {s["status"] for s in run["stages"]} <= {"completed", "failed", "cancelled"}
        assert flow_run.state_type == StateType.CRASHED
        assert flow_run.state is not None and flow_run.state.message == f"watchdog: {run['error']}"
        assert worker_of(flow_run) == kill.victim

    # Every other run completed, and each one still waiting at the kill ran on a survivor.
    done = [r for r in runs if r["prefect_flow_run_id"] not in held]
    assert [(r["status"], r["records_processed"]) for r in done] == [("completed", RECORDS)] * (
        RUNS - len(held)
    ), [(r["id"], r["error"]) for r in done if r["status"] != "completed"]
    assert [by_flow_run[r["prefect_flow_run_id"]].state_type for r in done] == [
        StateType.COMPLETED
    ] * (RUNS - len(held))
    assert all([s["status"] for s in r["stages"]] == ["completed"] * 5 for r in done)
    assert kill.scheduled, "the kill came too late to leave work for the survivors"
    after_kill = {worker_of(by_flow_run[str(r.id)]) for r in kill.scheduled}
    assert after_kill and after_kill <= survivors
    ran_by = {worker_of(by_flow_run[r["prefect_flow_run_id"]]) for r in runs}
    assert kill.victim in ran_by and len(ran_by) >= 2 and ran_by <= set(scale_stack.workers)

    # The limit held. In Prefect's books — each run from its Pending state (the slot is taken) to
    # its final state (released) — exactly two at a time: never three, and the two slots used.
    slot_spans, bounced = [], 0
    for run in runs:
        states = sorted(
            await prefect.read_flow_run_states(UUID(run["prefect_flow_run_id"])),
            key=lambda state: state.timestamp,
        )
        bounced += sum(state.name == "AwaitingConcurrencySlot" for state in states)
        # Pending, then Submitting (also of type Pending): the first is when the slot was taken
        pending = [state.timestamp for state in states if state.type == StateType.PENDING]
        assert states[-1].is_final() and pending, states
        slot_spans.append((pending[0], states[-1].timestamp))
    assert max_overlap(slot_spans) == POOL_LIMIT
    # And from our own stage timestamps (first stage started → export completed, or the run's end
    # for a run that died), never more than two — the stage work is a short part of each slot, so
    # two runs' stages do not always meet.
    assert all([s["name"] for s in r["stages"]] == STAGES for r in runs)
    stage_spans = [span for r in runs if (span := interval(r)) is not None]
    assert len(stage_spans) >= len(done)
    assert max_overlap(stage_spans) <= POOL_LIMIT, sorted(stage_spans)
    # How often the deployment limit turned away a run the pool limit let through (varies: 0-3).
    print(f"over-claims sent back by the deployment concurrency limit: {bounced}")


def test_max_overlap_counts_touching_intervals_as_sequential() -> None:
    t = [datetime(2026, 1, 1, 0, 0, s) for s in range(6)]
    assert max_overlap([(t[0], t[2]), (t[2], t[4])]) == 1
    assert max_overlap([(t[0], t[3]), (t[1], t[4]), (t[2], t[5])]) == 3
    assert max_overlap([(t[0], t[5]), (t[1], t[2]), (t[3], t[4])]) == 2
    assert max_overlap([]) == 0
