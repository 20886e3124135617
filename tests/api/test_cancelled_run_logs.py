"""GET /api/pipelines/{id}/logs of a cancelled run, against a real Prefect server holding the
lines Prefect 3.8.8 sends for a cancel: its engine's `Finished in state Running()` and then its
worker's reload of the flow (pull steps) ended the tail, as if the run started again."""

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import flow, task
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import LogCreate
from prefect.states import Running

from app.devstack import Stack
from app.models import Status, utcnow
from tests.conftest import Configure
from tests.support.postgres import free_port
from tests.support.rows import add_pipeline, add_run

T = datetime(2026, 11, 27, 23, 19, 43, tzinfo=UTC)
FLOW, TASK, WORKER = "prefect.flow_runs", "prefect.task_runs", "prefect.flow_runs.worker"
PULL_STEPS = [
    "Running 1 deployment pull step(s)",
    "Executing deployment step: set_working_directory",
    "Deployment step 'set_working_directory' completed successfully",
    "All deployment steps completed successfully",
]
# (seconds after T, logger, message, of the task run): what a run cancelled in its ingest stage
# sent, as seen on a real stack
BEFORE_THE_END = [
    (0.0, WORKER, "Worker 'worker-1' submitting flow run"),
    *((0.1 + i / 100, FLOW, message) for i, message in enumerate(PULL_STEPS)),
    (0.4, FLOW, "Beginning flow run 'armored-chipmunk' for flow 'Data Pipeline'"),
    (4.3, TASK, "stage generate completed: 20000000 in, 20000000 out"),
    (6.2, TASK, "Crash detected! Execution was cancelled by the runtime environment."),
    (9.3, FLOW, "run 1 was cancelled: its files were removed"),
    (9.4, FLOW, "Flow run was cancelled."),
]
ENGINE_END = (9.401, FLOW, "Finished in state Running()")
RELOAD = [(12.2 + i / 100, FLOW, message) for i, message in enumerate(PULL_STEPS)]
CANCELLED_AT = T + timedelta(seconds=6)
END = {
    "id": "run-1-cancelled",
    "timestamp": "2026-11-27T23:19:49Z",
    "level": "INFO",
    "logger": "pipeline",
    "message": "run 1 cancelled through the API (not shown: Prefect's `Finished in state "
    "Running()` as its flow-run process stopped, and what its worker logged after it, loading "
    "the flow again to look for on_cancellation hooks)",
    "task_run_id": None,
}


@pytest.fixture(scope="module")
def prefect_server(tmp_root: Path) -> Iterator[str]:
    """A Prefect server of its own (no worker, no deployment): its API's URL."""
    root = tmp_root / "cancelled-run-logs"
    (root / "logs").mkdir(parents=True, exist_ok=True)
    stack = Stack(
        env={**os.environ, "PREFECT_HOME": str(root / "prefect-home")},
        prefect_port=free_port(),
        state_dir=root,
        log_dir=root / "logs",
    )
    stack.start_server()
    try:
        yield stack.prefect_api_url
    finally:
        stack.stop()


@pytest.fixture
async def prefect(prefect_server: str, configure: Configure) -> AsyncIterator[PrefectClient]:
    await configure(PREFECT_API_URL=prefect_server)
    async with PrefectClient(api=prefect_server) as client:
        yield client


@flow(name="cancelled-run-logs")
def _flow() -> None:
    pass


@task(name="ingest_data")
def _ingest() -> None:
    pass


async def _flow_run_with(prefect: PrefectClient, lines: list[tuple[float, str, str]]) -> str:
    """A flow run with these lines in Prefect, its task run's lines with a task run id."""
    flow_run = await prefect.create_flow_run(_flow, state=Running())
    task_run_id = (await prefect.create_task_run(_ingest, flow_run.id, "k")).id
    await prefect.create_logs(
        [
            LogCreate(
                name=logger,
                level=20 if "Finished" not in message else 40,
                message=message,
                timestamp=T + timedelta(seconds=seconds),
                flow_run_id=flow_run.id,
                task_run_id=task_run_id if logger == TASK else None,
            )
            for seconds, logger, message in lines
        ]
    )
    return str(flow_run.id)


def _shown(body: list[dict[str, Any]]) -> list[object]:
    """Each of Prefect's lines as its time, logger and message; the service's own line whole."""
    return [
        line
        if line["logger"] == "pipeline"
        else (line["timestamp"], line["logger"], line["message"])
        for line in body
    ]


def _expected(lines: list[tuple[float, str, str]]) -> list[object]:
    def when(seconds: float) -> str:
        return (T + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    return [(when(seconds), logger, message) for seconds, logger, message in lines]


async def _cancelled_run(flow_run_id: str, *, at: datetime = CANCELLED_AT) -> int:
    pipeline_id = await add_pipeline("big", record_count=20_000_000)
    await add_run(
        pipeline_id,
        Status.CANCELLED,
        {},
        prefect_flow_run_id=flow_run_id,
        error="cancelled through the API",
        completed_at=at,
    )
    return pipeline_id


async def test_a_cancelled_runs_tail_ends_with_the_line_saying_so(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """It ended `Finished in state Running()` and four pull-step lines, read as a run that
    started again."""
    flow_run_id = await _flow_run_with(prefect, [*BEFORE_THE_END, ENGINE_END, *RELOAD])
    pipeline_id = await _cancelled_run(flow_run_id)
    url = f"/api/pipelines/{pipeline_id}/logs"

    tail = (await client.get(url, params={"tail": "true", "limit": 4})).json()
    assert _shown(tail) == [*_expected(BEFORE_THE_END[-3:]), END]

    whole = (await client.get(url)).json()
    assert _shown(whole) == [*_expected(BEFORE_THE_END), END]
    # paged either way, the same lines, the service's last, each once
    assert len(whole) == 11
    pages = [(await client.get(url, params={"limit": 3, "offset": o})).json() for o in (0, 3, 6, 9)]
    assert [line for page in pages for line in page] == whole
    assert (await client.get(url, params={"offset": 10})).json() == [END]
    assert (await client.get(url, params={"offset": 11})).json() == []
    back = [
        (await client.get(url, params={"tail": "true", "limit": 3, "offset": o})).json()
        for o in (9, 6, 3, 0)
    ]
    assert [line for page in back for line in page] == whole
    assert (await client.get(url, params={"tail": "true", "limit": 1})).json() == [END]


async def test_a_running_run_shows_every_line_prefect_has(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    flow_run_id = await _flow_run_with(prefect, [*BEFORE_THE_END, ENGINE_END, *RELOAD])
    pipeline_id = await add_pipeline("running")
    await add_run(pipeline_id, Status.RUNNING, {}, prefect_flow_run_id=flow_run_id)
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs")).json()
    assert _shown(body) == _expected([*BEFORE_THE_END, ENGINE_END, *RELOAD])


async def test_a_cancel_whose_process_is_still_stopping_shows_its_lines_so_far(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """The API marks the run cancelled at once; its process logs its stop seconds later: the
    service's line would come before them."""
    flow_run_id = await _flow_run_with(prefect, BEFORE_THE_END[:-2])
    pipeline_id = await _cancelled_run(flow_run_id, at=utcnow())
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs", params={"tail": "true"})).json()
    assert _shown(body) == _expected(BEFORE_THE_END[:-2])


async def test_a_run_cancelled_before_its_process_began_ends_with_the_line_alone(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """No engine line will come: a minute after the cancel, the service's line ends the tail."""
    flow_run_id = await _flow_run_with(prefect, BEFORE_THE_END[:1])
    pipeline_id = await _cancelled_run(flow_run_id)
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs", params={"tail": "true"})).json()
    assert _shown(body) == [
        *_expected(BEFORE_THE_END[:1]),
        {**END, "message": "run 1 cancelled through the API"},
    ]
