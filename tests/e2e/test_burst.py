"""Burst: many triggers at once from many clients on PostgreSQL with two workers — every run
completes, none is lost, duplicated or stuck. Run by `make chaos` (BURST_TRIGGERS, default 200)."""

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

from tests.e2e.conftest import RunningStack, started_stack

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(30 * 60)]

TRIGGERS = int(os.environ.get("BURST_TRIGGERS", "200"))
CLIENTS = 20


@pytest.fixture(scope="module")
def burst_stack(request: pytest.FixtureRequest, tmp_root: Path) -> Iterator[RunningStack]:
    with started_stack(
        "postgresql",
        request,
        tmp_root,
        name="burst",
        workers=2,
        env={"PIPELINE_STALE_HEARTBEAT_SECONDS": "60"},
    ) as running:
        yield running


async def test_burst_of_triggers_all_complete_once(burst_stack: RunningStack) -> None:
    stack = burst_stack.stack
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as api:
        gate = asyncio.Semaphore(CLIENTS)

        async def create(number: int) -> int:
            async with gate:
                response = await api.post(
                    "/api/pipelines", json={"name": f"burst-{number}", "record_count": 100}
                )
                assert response.status_code == 201, response.text
                return int(response.json()["id"])

        ids = await asyncio.gather(*(create(n) for n in range(TRIGGERS)))
        started = time.monotonic()

        async def trigger(pipeline_id: int) -> str:
            async with gate:
                response = await api.post(f"/api/pipelines/{pipeline_id}/trigger")
                assert response.status_code == 202, response.text
                return str(response.json()["prefect_flow_run_id"])

        flow_run_ids = await asyncio.gather(*(trigger(i) for i in ids))
        triggered_after = time.monotonic() - started

        deadline = started + 20 * 60
        while time.monotonic() < deadline:
            done = (await api.get("/api/pipelines", params={"status": "completed"})).json()
            failed = (await api.get("/api/pipelines", params={"status": "failed"})).json()
            assert failed["total"] == 0, failed["items"][0]
            if done["total"] == TRIGGERS:
                break
            await asyncio.sleep(1)
        makespan = time.monotonic() - started
        print(
            f"\nburst: {TRIGGERS} triggers from {CLIENTS} clients accepted in {triggered_after:.1f} s;"
            f" all completed after {makespan:.1f} s with 2 workers"
        )
        assert done["total"] == TRIGGERS
        unfinished = [
            status
            for status in ("pending", "running")
            if (await api.get("/api/pipelines", params={"status": status})).json()["total"]
        ]
        assert unfinished == []

    assert len(set(flow_run_ids)) == TRIGGERS
    async with PrefectClient(api=stack.prefect_api_url) as prefect:
        flow_runs = await prefect.read_flow_runs(
            deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["data-pipeline-deployment"])
            ),
        )
    assert len(flow_runs) == TRIGGERS  # no duplicated flow run
    assert sorted(str(run.id) for run in flow_runs) == sorted(flow_run_ids)
    assert all(run.state is not None and run.state.is_completed() for run in flow_runs)
