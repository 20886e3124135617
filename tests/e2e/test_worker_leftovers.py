"""What a worker killed outright leaves in its temporary directory (app/scratch.py), on the real
stack: Prefect's `runner_storage/<uuid>` and the run's `tmp…prefect` working directory, which
piled up in /tmp by the thousand. The next worker to start removes them; a live worker's
directory is never touched, and a worker that stops removes its own."""

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from app import scratch
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import child_pids, start_with_env, wait_for_final, wait_for_stage

pytestmark = pytest.mark.parametrize("running_stack", ["postgresql"], indirect=True)

HOLD_GENERATE = {"PIPELINE_STAGE_DELAY": "generate:60"}


def _directory_of(worker_pid: int) -> Path:
    """The worker's temporary directory: its zygote's TMPDIR (the worker sets its own after it
    started, which /proc does not show), within 60 s of its start."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in child_pids(worker_pid):
            for assignment in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
                if assignment.startswith(b"TMPDIR="):
                    return Path(os.fsdecode(assignment[len(b"TMPDIR=") :]))
        time.sleep(0.1)
    raise AssertionError(f"worker {worker_pid} started no process with a TMPDIR within 60 s")


async def _until_unused(directory: Path) -> None:
    """Until no process uses `directory`: the killed worker's run stops 5 s after its zygote
    died (PR_SET_PDEATHSIG), within 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not scratch.users(directory):
            return
        await asyncio.sleep(0.2)
    assert scratch.users(directory) == []


def _lines(log: Path) -> list[str]:
    return log.read_text(errors="replace").splitlines() if log.exists() else []


async def _log_line(log: Path, prefix: str) -> str:
    """The first line of `log` starting with `prefix`, within 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if found := [line for line in _lines(log) if line.startswith(prefix)]:
            return found[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no line starting {prefix!r} in {log} within 60 s")


async def test_a_killed_workers_leftovers_go_at_the_next_start_and_a_live_ones_stay(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    processes = stack.stack.processes
    worker = next(p for p in processes if p.name.startswith("worker-"))
    killed = _directory_of(worker.popen.pid)
    assert killed.parent == stack.stack.tmp_dir
    pipeline_id, _ = await start_with_env(api, prefect, HOLD_GENERATE, "leftovers")
    await wait_for_stage(api, pipeline_id, "generate", "running")
    os.killpg(worker.popen.pid, signal.SIGKILL)  # the worker and its zygote: none cleans up
    stack.stack.stop_process(worker.name)
    number = int(worker.name.split("-")[1])
    try:
        left = sorted(path.name for path in killed.iterdir())
        assert len(left) == 2 and len(os.listdir(killed / left[0])) == 1, left
        assert (left[0], left[1][:3], left[1][-7:]) == ("runner_storage", "tmp", "prefect")
        await _until_unused(killed)
        assert killed.exists()  # nothing removed it meanwhile

        sweeping = stack.stack.start_worker(number + 100)
        line = await _log_line(Path(sweeping.log.name), "removed 1 temporary directory")
        assert line == f"removed 1 temporary directory left by workers that are gone: {killed}"
        assert not killed.exists()
        live = _directory_of(sweeping.popen.pid)

        second = stack.stack.start_worker(number + 101)
        second_directory = _directory_of(second.popen.pid)  # it has swept by now
        assert live.exists()
        stack.stack.stop_process(second.name)  # a worker that stops removes its own
        assert not second_directory.exists()
        assert live.exists()
        assert (await wait_for_final(api, pipeline_id, within=90))["status"] == "failed"
    finally:  # the shared stack's next tests need a worker
        if not any(p.name.startswith("worker-") for p in stack.stack.processes):
            stack.stack.start_worker(number + 10)
