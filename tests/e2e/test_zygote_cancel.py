"""A run cancelled while it runs, forked from the zygote, on the real stack: what its worker's log
shows of it, and that the cancel is still recorded and exits as a cold run's would."""

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import start_with_env, wait_for_flow_run, wait_for_stage

# the worker's log does not depend on the database backend
pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)

HOLD_GENERATE = {"PIPELINE_STAGE_DELAY": "generate:60"}
EXITED = re.compile(r"zygote: flow-run process \d+ exited (-?\d+) ")


async def _log_lines_until(log: Path, offset: int, after: str, last: re.Pattern[str]) -> list[str]:
    """The worker log's lines written since `offset`, up to the first that matches `last` after
    the line ending with `after` (a process of a test before may exit in between)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        written = await asyncio.to_thread(log.read_bytes)
        lines = written[offset:].decode(errors="replace").splitlines()
        start = next((i for i, line in enumerate(lines) if line.endswith(after)), len(lines))
        for end, line in enumerate(lines[start:], start):
            if last.search(line):
                return lines[: end + 1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no line matching {last.pattern!r} after {after!r} in {log} within 30 s")


async def test_a_cancelled_run_leaves_no_traceback_in_its_workers_log(
    stack: RunningStack, api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """Every cancel logged ~70 lines of asyncio traceback ("unhandled exception during
    asyncio.run() shutdown": Prefect's engine ends the flow's task with TerminationSignal)."""
    log = stack.stack.log_dir / "worker-1.log"
    offset = log.stat().st_size
    pipeline_id, flow_run_id = await start_with_env(api, prefect, HOLD_GENERATE, "quiet-cancel")
    await wait_for_stage(api, pipeline_id, "generate", "running")

    cancelled = await api.post(f"/api/pipelines/{pipeline_id}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (202, "cancelled")
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_cancelled()
    assert flow_run.state_name == "Cancelled"

    terminated = f"| prefect.engine - Execution of flow run '{flow_run_id}' was terminated."
    lines = await _log_lines_until(log, offset, terminated, EXITED)
    began = f"Beginning flow run '{flow_run.name}' for flow 'Data Pipeline'"
    run = lines[next(i for i, line in enumerate(lines) if line.endswith(began)) :]
    assert [line for line in run if "Traceback" in line or "asyncio" in line] == []
    exited = EXITED.search(run[-1])
    assert exited is not None and exited.group(1) == "0"  # as Prefect's engine exits, cold too
