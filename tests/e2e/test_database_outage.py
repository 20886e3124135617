"""PostgreSQL (the service's database and Prefect's) stops for a while under a run in flight, on a
real stack of its own cluster: the run waits it out and completes; nothing says otherwise."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack, started_stack
from tests.support.postgres import PostgresCluster, own_cluster

OUTAGE_SECONDS = 15  # longer than the stale age below: each write and beat in it waits


@pytest.fixture(scope="module")
def outage_cluster() -> Iterator[PostgresCluster]:
    """A cluster of this module's own: stopping it disturbs no other test's stack."""
    with own_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def pg_base_url(outage_cluster: PostgresCluster) -> str:
    """This module's stack puts both databases on its own cluster (started_stack asks for it)."""
    return outage_cluster.url


@pytest.fixture(scope="module")
def outage_stack(
    request: pytest.FixtureRequest, tmp_root: Path, outage_cluster: PostgresCluster
) -> Iterator[RunningStack]:
    env = {
        # generate holds 5 s before its work: its end, and its completed write, land in the outage
        "PIPELINE_STAGE_DELAY": "generate:5",
        "PIPELINE_STALE_HEARTBEAT_SECONDS": "10",  # the outage outlasts it
    }
    with started_stack("postgresql", request, tmp_root, name="outage", env=env) as running:
        yield running


@pytest.fixture
async def outage_api(outage_stack: RunningStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=outage_stack.stack.api_url, timeout=30) as http:
        yield http


async def _pipeline_when(
    api: httpx.AsyncClient, pipeline_id: int, done: Any, within: float
) -> dict[str, Any]:
    """The pipeline once `done(body)`; the API's 503s while the database is away are waited out."""
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = await api.get(f"/api/pipelines/{pipeline_id}")
        if answer.status_code == 200 and done(body := answer.json()):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"pipeline {pipeline_id} not as expected after {within} s: {body}")


def _generating(body: dict[str, Any]) -> bool:
    run = body["latest_run"]
    return bool(run) and run["stages"][0]["status"] == "running"


async def test_a_run_outlasts_a_database_outage_under_its_stage(
    outage_api: httpx.AsyncClient, outage_cluster: PostgresCluster, outage_stack: RunningStack
) -> None:
    created = await outage_api.post(
        "/api/pipelines", json={"name": "outlasts", "record_count": 1000, "trigger": True}
    )
    assert created.status_code == 201
    pipeline_id = created.json()["id"]
    await _pipeline_when(outage_api, pipeline_id, _generating, within=120)

    await asyncio.to_thread(outage_cluster.stop)  # generate ends and writes while it is down
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(outage_cluster.start)

    body = await _pipeline_when(
        outage_api, pipeline_id, lambda b: b["status"] in ("completed", "failed"), within=180
    )
    run = body["latest_run"]
    assert (body["status"], run["error"]) == ("completed", None)
    assert [s["status"] for s in run["stages"]] == ["completed"] * 5
    logs = "".join(p.read_text() for p in (outage_stack.data_dir.parent / "logs").glob("*.log"))
    assert "the directory of its deleted run may remain" not in logs
