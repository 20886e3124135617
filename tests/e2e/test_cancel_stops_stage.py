"""A run cancelled mid-generate, on the real stack, as the README's repro: the generate stage
stops between its parts instead of writing all of them (20 parts, 834 MB for 20M records, kept
until PIPELINE_RETENTION_DAYS though a cancelled run's output is never served), and the run's
directory is emptied once it has (app/pipeline/stage_stop.py)."""

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import wait_for_flow_run, wait_for_stage

# the stop does not depend on the database backend
pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)

RECORDS = 20_000_000  # 20 parts of the default PIPELINE_BATCH_ROWS


async def _log_match(log: Path, offset: int, pattern: re.Pattern[str]) -> re.Match[str]:
    """The first line the worker's log gets after `offset` that matches `pattern`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        written = (await asyncio.to_thread(log.read_bytes))[offset:].decode(errors="replace")
        if found := pattern.search(written):
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no line matching {pattern.pattern!r} in {log} within 60 s")


async def test_a_run_cancelled_mid_generate_stops_writing_and_keeps_no_parts(
    stack: RunningStack, api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    log = stack.stack.log_dir / "worker-1.log"
    offset = log.stat().st_size
    created = await api.post(
        "/api/pipelines", json={"name": "cancelled big", "record_count": RECORDS, "trigger": True}
    )
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]
    body = await wait_for_stage(api, pipeline_id, "generate", "running")
    run_id, flow_run_id = body["latest_run"]["id"], body["latest_run"]["prefect_flow_run_id"]
    raw = stack.data_dir / "runs" / str(run_id) / "raw"
    deadline = time.monotonic() + 60
    while not (raw / "part-00000.parquet").exists():  # mid-generate: its first part is there
        assert time.monotonic() < deadline, f"no part in {raw} within 60 s"
        await asyncio.sleep(0.05)

    cancelled = await api.post(f"/api/pipelines/{pipeline_id}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (202, "cancelled")
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_cancelled()

    stopped = await _log_match(
        log, offset, re.compile(rf"run {run_id}: generate stopped between parts: (\d+) of 20 ")
    )
    assert 1 <= int(stopped.group(1)) < 20
    await _log_match(
        log, offset, re.compile(rf"run {run_id} was cancelled: its files were removed")
    )
    assert list(raw.parent.iterdir()) == []  # no ingest ran: no rejects file either
