"""A worker stopped while it runs a flow (`docker compose stop`, a scale-down, Ctrl-C of `make up`):
its runs stop as a shutdown stops a process, saying so, and nothing of them is left running.

The worker's zygote once SIGKILLed the flow-run process as soon as Prefect's worker, stopping,
killed its launcher: the run stayed `running` until the watchdog's stale-heartbeat timeout, and
Prefect showed it Running meanwhile."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from app.config import PROJECT_ROOT, get_settings
from app.pipeline.hand_back import handed_back_message
from app.pipeline.launcher import SOCKET_ENV
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import (
    child_pids,
    start_with_env,
    wait_for_final,
    wait_for_flow_run,
    wait_for_stage,
)
from tests.e2e.test_warm_start import alive, listening

pytestmark = pytest.mark.parametrize("running_stack", ["postgresql"], indirect=True)

HOLD_TRANSFORM = {"PIPELINE_STAGE_DELAY": "transform:60"}
POOL = get_settings().work_pool_name  # the stack's own (conftest sets no WORK_POOL_NAME)
SETTLED_WITHIN = 10.0
STARTED_WITHIN = 60.0  # a worker's start: its zygote's imports, then Prefect's  # the watchdog would take PIPELINE_STALE_HEARTBEAT_SECONDS (20 s here)


def zygote_of(worker_pid: int) -> int:
    (zygote,) = [
        pid
        for pid in child_pids(worker_pid)
        if b"app.pipeline.warm_start.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return zygote


def _listening_zygote(worker_pid: int) -> int | None:
    with contextlib.suppress(ValueError, OSError):
        zygote = zygote_of(worker_pid)
        environ = Path(f"/proc/{zygote}/environ").read_bytes().split(b"\0")
        socket_path = next(v for v in environ if v.startswith(f"{SOCKET_ENV}=".encode()))
        if listening(Path(socket_path.split(b"=", 1)[1].decode())):
            return zygote
    return None


async def listening_zygote_of(worker_pid: int) -> int:
    """The worker's zygote once it listens: a worker the previous test started again may still
    be starting it."""
    deadline = time.monotonic() + STARTED_WITHIN
    while (zygote := _listening_zygote(worker_pid)) is None:
        assert time.monotonic() < deadline, "the worker's zygote never listened"
        await asyncio.sleep(0.1)
    return zygote


@pytest.mark.parametrize("signalled", ["worker", "group"])
async def test_a_worker_stopped_mid_run_fails_its_run_saying_so_and_leaves_no_process(
    stack: RunningStack, api: httpx.AsyncClient, prefect: PrefectClient, signalled: str
) -> None:
    """`worker`: SIGTERM to the worker process alone (`kill -TERM`, a container's stop);
    `group`: to its process group, the worker and its zygote at once (the devstack's stop)."""
    pipeline_id, flow_run_id = await start_with_env(api, prefect, HOLD_TRANSFORM, "stopped")
    await wait_for_stage(api, pipeline_id, "transform", "running")
    worker = next(p for p in stack.stack.processes if p.name.startswith("worker-"))
    zygote = zygote_of(worker.popen.pid)
    (flow_run_process,) = child_pids(zygote)
    launcher = (await prefect.read_flow_run(UUID(flow_run_id))).infrastructure_pid
    assert launcher is not None
    try:
        started = time.monotonic()
        if signalled == "worker":
            os.kill(worker.popen.pid, signal.SIGTERM)
        else:
            os.killpg(worker.popen.pid, signal.SIGTERM)
        body = await wait_for_final(api, pipeline_id, within=SETTLED_WITHIN)
        settled = time.monotonic() - started
        run = body["latest_run"]
        assert (run["status"], run["error"]) == ("failed", STOPPED_WITHOUT_CANCEL)
        assert [(s["name"], s["status"], s["message"], s["error"]) for s in run["stages"]] == [
            ("generate", "completed", None, None),
            ("ingest", "completed", None, None),
            ("process", "completed", None, None),
            ("transform", "failed", None, STOPPED_WITHOUT_CANCEL),  # where the stop came
            ("export", "cancelled", "not run: an earlier stage failed", None),
        ]
        flow_run = await wait_for_flow_run(prefect, flow_run_id, within=SETTLED_WITHIN)
        assert flow_run.state is not None and flow_run.state.is_crashed()
        assert await asyncio.to_thread(worker.popen.wait, SETTLED_WITHIN) == 0
        stopped = time.monotonic() - started
        assert [pid for pid in (zygote, int(launcher), flow_run_process) if alive(pid)] == []
        print(f"run settled {settled:.2f} s, worker gone {stopped:.2f} s after its SIGTERM")
    finally:  # the shared stack gets its worker back
        stack.stack.stop_process(worker.name)
        stack.stack.start_worker(int(worker.name.removeprefix("worker-")))


async def test_a_run_whose_process_never_started_is_handed_back_when_its_worker_stops(
    stack: RunningStack, api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """Stopped within ~0.2 s of a trigger, the worker had proposed the run Pending and its
    launcher died at the stop, before the flow-run process started: Prefect offers no worker a
    Pending run again, and the run stayed `pending`. Here the zygote is held (SIGSTOP) so that
    the stop always comes between the two: the launcher has asked for its run, nothing has
    forked."""
    worker = next(p for p in stack.stack.processes if p.name.startswith("worker-"))
    zygote = await listening_zygote_of(worker.popen.pid)
    os.kill(zygote, signal.SIGSTOP)
    try:
        pipeline_id, flow_run_id = await start_with_env(api, prefect, {}, "handed-back")
        launcher = None
        deadline = time.monotonic() + STARTED_WITHIN
        while launcher is None:  # the worker records its launcher once it has started it
            assert time.monotonic() < deadline, "the worker never started the run's launcher"
            launcher = (await prefect.read_flow_run(UUID(flow_run_id))).infrastructure_pid
            await asyncio.sleep(0.05)
        os.kill(worker.popen.pid, signal.SIGTERM)
        while alive(int(launcher)):  # Prefect's worker kills its launchers as it stops
            assert time.monotonic() < deadline, "the launcher outlived the stop"
            await asyncio.sleep(0.05)
    finally:
        os.kill(zygote, signal.SIGCONT)  # it forks the run (for a launcher gone) and stops it
    try:
        assert await asyncio.to_thread(worker.popen.wait, SETTLED_WITHIN) == 0
        state = (await prefect.read_flow_run(UUID(flow_run_id))).state
        assert state is not None
        assert (state.type.value, state.message) == (
            "SCHEDULED",
            handed_back_message(f"{worker.name}-{os.getpid()}"),
        )
    finally:  # the shared stack gets its worker back; it takes the run
        stack.stack.stop_process(worker.name)
        stack.stack.start_worker(int(worker.name.removeprefix("worker-")))
    run = (await wait_for_final(api, pipeline_id))["latest_run"]
    assert (run["status"], run["error"], run["prefect_flow_run_id"]) == (
        "completed",
        None,
        flow_run_id,
    )


def _ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell script's `cmd &` starts it


def test_a_worker_started_with_sigint_ignored_stops_on_sigterm(running_stack: RunningStack) -> None:
    """Prefect's worker stops on SIGTERM by sending itself SIGINT: started with SIGINT ignored,
    it ignored that too and ran on until a SIGKILL."""
    name = f"worker-sigint-{os.getpid()}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.worker", *("--pool", POOL, "--name", name)],
        cwd=PROJECT_ROOT,
        env=running_stack.stack.process_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_ignoring_sigint,
    )
    assert worker.stdout is not None
    try:
        for line in worker.stdout:  # its handlers are in once it says it started
            if line.startswith(f"Worker {name!r} started!"):
                break
        else:
            raise AssertionError(f"the worker exited {worker.wait()} before it started")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(SETTLED_WITHIN) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        worker.stdout.close()
