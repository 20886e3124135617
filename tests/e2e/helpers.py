"""Helpers of the end-to-end tests: wait for runs, read Prefect, start runs with drills."""

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, TaskRun

from app.config import PROJECT_ROOT
from app.db import get_sessionmaker
from app.models import PipelineRun, Status
from app.pipeline.status import new_stage_rows

FINAL = {"completed", "failed", "cancelled"}
TASK_NAMES = ["generate_data", "ingest_data", "process_data", "transform_data", "export_results"]


def next_daily(hour: int, timezone: str = "UTC") -> datetime:
    """When a daily cron `0 <hour> * * *` in `timezone` fires next, in UTC."""
    now = datetime.now(ZoneInfo(timezone))
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return (today if today > now else today + timedelta(days=1)).astimezone(UTC)


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def wait_for_final(
    api: httpx.AsyncClient, pipeline_id: int, within: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        body: dict[str, Any] = (await api.get(f"/api/pipelines/{pipeline_id}")).json()
        if body["status"] in FINAL:
            return body
        if time.monotonic() >= deadline:
            raise AssertionError(f"pipeline {pipeline_id} not finished after {within} s: {body}")
        await asyncio.sleep(0.2)


async def task_runs(prefect: PrefectClient, flow_run_id: str, expected: int) -> list[TaskRun]:
    """Task runs reach the Prefect API a few seconds after the flow finishes: wait for them."""
    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
    runs: list[TaskRun] = []
    for _ in range(150):
        runs = await prefect.read_task_runs(flow_run_filter=flow_filter)
        if len(runs) == expected and all(run.state and run.state.is_final() for run in runs):
            return sorted(runs, key=lambda run: TASK_NAMES.index(run.task_key.rsplit("-", 1)[0]))
        await asyncio.sleep(0.2)
    raise AssertionError(f"expected {expected} finished task runs, got {runs}")


async def deploy(env: dict[str, str]) -> None:
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(PROJECT_ROOT / "app/pipeline/deploy.py")],
        env=env,
        check=True,
        capture_output=True,
    )


async def start_with_env(
    api: httpx.AsyncClient, prefect: PrefectClient, env: dict[str, str], name: str
) -> tuple[int, str]:
    """Start a run from Prefect itself (as a schedule or the UI would) with drill settings in its
    environment; returns the pipeline id and the flow run id."""
    pipeline = (await api.post("/api/pipelines", json={"name": name, "record_count": 100})).json()
    return pipeline["id"], await start_flow_run(prefect, pipeline["id"], 100, env)


async def start_flow_run(
    prefect: PrefectClient, pipeline_id: int, record_count: int, env: dict[str, str]
) -> str:
    """A flow run of the deployment for a pipeline that exists, with `env` in its environment."""
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    flow_run = await prefect.create_flow_run_from_deployment(
        deployment.id,
        parameters={"pipeline_id": pipeline_id, "record_count": record_count},
        job_variables={"env": env},
    )
    return str(flow_run.id)


async def run_with_env(
    api: httpx.AsyncClient, prefect: PrefectClient, env: dict[str, str], name: str
) -> tuple[dict[str, Any], str]:
    """start_with_env, then wait until the run is final."""
    pipeline_id, flow_run_id = await start_with_env(api, prefect, env, name)
    return await wait_for_final(api, pipeline_id), flow_run_id


async def wait_for_flow_run(
    prefect: PrefectClient, flow_run_id: str, within: float = 60
) -> FlowRun:
    """The flow run once Prefect has it in a final state."""
    deadline = time.monotonic() + within
    while True:
        flow_run = await prefect.read_flow_run(UUID(flow_run_id))
        if flow_run.state is not None and flow_run.state.is_final():
            return flow_run
        if time.monotonic() > deadline:
            raise AssertionError(
                f"flow run {flow_run_id} not final after {within} s: {flow_run.state}"
            )
        await asyncio.sleep(0.25)


async def wait_for_stage(
    api: httpx.AsyncClient, pipeline_id: int, stage: str, status: str, within: float = 60
) -> dict[str, Any]:
    """The pipeline once `stage` of its latest run has `status`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        body: dict[str, Any] = (await api.get(f"/api/pipelines/{pipeline_id}")).json()
        run = body["latest_run"]
        if run and any(s["name"] == stage and s["status"] == status for s in run["stages"]):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"stage {stage} of pipeline {pipeline_id} never {status}")


async def add_run_row(pipeline_id: int, status: Status, **fields: Any) -> PipelineRun:
    """A run row written straight to the database, as a trigger (or a watchdog) left it."""
    async with get_sessionmaker()() as session:
        run = PipelineRun(
            pipeline_id=pipeline_id,
            record_count=10,
            status=status,
            stages=new_stage_rows(),
            **fields,
        )
        session.add(run)
        await session.commit()
        return run
