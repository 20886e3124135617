"""A worker stopped while it runs a flow (`docker compose stop`, a scale-down, Ctrl-C of `make up`):
its runs stop as a shutdown stops a process, saying so, and nothing of them is left running.

The worker's zygote once SIGKILLed the flow-run process as soon as Prefect's worker, stopping,
killed its launcher: the run stayed `running` until the watchdog's stale-heartbeat timeout, and
Prefect showed it Running meanwhile."""

import asyncio
import os
import signal
import time
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from app.pipeline.status import INTERRUPTED
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import (
    child_pids,
    start_with_env,
    wait_for_final,
    wait_for_flow_run,
    wait_for_stage,
)
from tests.e2e.test_warm_start import alive

pytestmark = pytest.mark.parametrize("running_stack", ["postgresql"], indirect=True)

HOLD_TRANSFORM = {"PIPELINE_STAGE_DELAY": "transform:60"}
SETTLED_WITHIN = 10.0  # the watchdog would take PIPELINE_STALE_HEARTBEAT_SECONDS (20 s here)


def zygote_of(worker_pid: int) -> int:
    (zygote,) = [
        pid
        for pid in child_pids(worker_pid)
        if b"app.pipeline.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
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
            ("transform", "failed", INTERRUPTED, None),  # INTERRUPTED: see the run's error
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
