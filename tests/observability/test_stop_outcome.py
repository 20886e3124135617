"""A run stopped mid-stage reports to Datadog what its rows say: a stop without a cancel (a worker
shutting down, `make down`) is a failure with the rows' error on the stage that was running and on
the flow, counted once; a cancel stays cancelled and is no error. It was reported `cancelled`
(stage status, error 0) with the flow's error `asyncio.exceptions.CancelledError` and no message,
while the rows said failed.

The flow runs as a worker's process runs it (a fresh interpreter, Datadog pointed at the test
agent and a DogStatsD socket of the test's, a real database), Prefect's server and task machinery
left out; it is stopped while its ingest stage runs, as a stop reaches it: its await cancelled.
"""

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.pipeline.status import CANCELLED_IN_PREFECT
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL
from tests.conftest import new_database_url
from tests.observability import conftest
from tests.support.datadog import run_python

STOPPED_MID_INGEST = """
import asyncio, json, logging, sys, threading
from types import SimpleNamespace
from uuid import UUID
from prefect._internal import control_listener
from app.models import Status
from app.pipeline import flows
from app.pipeline import work as stage_work
from app.pipeline.work import StageOutput
from tests.support.rows import add_pipeline, add_run, read_run

FLOW_RUN_ID = UUID("0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10")
STAGES = ("generate_data", "ingest_data", "process_data", "transform_data", "export_results")
started, run_ended = threading.Event(), threading.Event()


def ingest(files):
    started.set()
    assert run_ended.wait(60)  # a Polars query runs on past the stop
    return StageOutput(1000, 1000)


async def main():
    pipeline_id = await add_pipeline("stopped")
    run_id = await add_run(pipeline_id, Status.PENDING, {}, prefect_flow_run_id=str(FLOW_RUN_ID))
    flows.FlowRunContext = SimpleNamespace(get=lambda: None)
    flows.flow_run = SimpleNamespace(
        id=FLOW_RUN_ID, tags=[f"pipeline-run:{run_id}"], flow_name="Data Pipeline"
    )
    flows.get_run_logger = lambda: logging.getLogger("test")
    for name in STAGES:
        setattr(flows, name, getattr(flows, name).fn)
    stage_work.ingest = ingest
    recorded = flows.update_pipeline_status

    async def recording(pipeline_id, stage, *args, **kw):
        written = await recorded(pipeline_id, stage, *args, **kw)
        if stage is None:
            run_ended.set()
        return written

    flows.update_pipeline_status = recording
    flow = asyncio.create_task(flows.run_data_pipeline_flow.fn(pipeline_id, 1000))
    assert await asyncio.to_thread(started.wait, 60)
    if sys.argv[1] == "cancel":  # Prefect's runner said so before its SIGTERM
        control_listener._set_intent("cancel")
    flow.cancel()
    try:
        await flow
    except asyncio.CancelledError:
        pass
    run = await read_run(run_id)
    print(json.dumps({
        "run": [run.status.value, run.error],
        "stages": [[s.name, s.status.value, s.error] for s in run.stages],
    }))


asyncio.run(main())
"""


@pytest.fixture
def datagrams() -> Iterator[socket.socket]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    yield receiver
    receiver.close()


def _metrics(receiver: socket.socket) -> list[str]:
    """The pipeline metrics received, unified tags left off and distributions without their
    value (timings vary); the process has exited, so all of them have arrived or are lost."""
    lines: list[str] = []
    receiver.settimeout(1)
    try:
        while True:
            lines += receiver.recv(65536).decode().splitlines()
    except TimeoutError:
        pass
    out = []
    for line in lines:
        head, kind, tags = line.split("|", 2)
        name = head.rsplit(":", 1)[0] if kind == "d" else head
        kept = [t for t in tags.removeprefix("#").split(",") if t.split(":")[0] in _TAGS]
        out.append(f"{name}|{kind}|#{','.join(kept)}")
    return out


_TAGS = {"stage", "status", "error_type"}


def _stopped_run(
    outcome: str,
    request: pytest.FixtureRequest,
    tmp_root: Path,
    agent: conftest.TestAgent,
    port: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the flow, stopped mid-ingest with (`cancel`) or without a cancel: its rows, and the
    pipeline spans of its service."""
    service = f"stop-{outcome}"
    result = run_python(
        STOPPED_MID_INGEST,
        outcome,
        DD_AGENT_HOST="127.0.0.1",
        DD_TRACE_AGENT_PORT=agent.url.rsplit(":", 1)[1],
        DD_DOGSTATSD_PORT=str(port),
        DD_SERVICE=service,
        DATABASE_URL=new_database_url("sqlite", request, tmp_root),
        PIPELINE_DATA_DIR=str(tmp_root / service),
    )
    rows = json.loads(result.stdout.splitlines()[-1])
    spans = sorted(
        (s for s in agent.spans() if s["service"] == service and s["name"].startswith("pipeline.")),
        key=lambda s: s["start"],
    )
    return rows, spans


def _seen(span: dict[str, Any]) -> tuple[str, str, str, int, str | None, str | None]:
    meta = span["meta"]
    return (
        span["name"],
        span["resource"],
        meta["status"],
        span["error"],
        meta.get("error.type"),
        meta.get("error.message"),
    )


def test_a_stop_without_a_cancel_is_a_failure_in_the_spans_and_metrics_as_in_the_rows(
    request: pytest.FixtureRequest,
    tmp_root: Path,
    test_agent: conftest.TestAgent,
    datagrams: socket.socket,
) -> None:
    rows, spans = _stopped_run("stop", request, tmp_root, test_agent, datagrams.getsockname()[1])
    assert rows == {
        "run": ["failed", STOPPED_WITHOUT_CANCEL],
        "stages": [
            ["generate", "completed", None],
            ["ingest", "failed", STOPPED_WITHOUT_CANCEL],
            ["process", "cancelled", None],
            ["transform", "cancelled", None],
            ["export", "cancelled", None],
        ],
    }
    assert [_seen(span) for span in spans] == [
        ("pipeline.flow", "Data Pipeline", "failed", 1, "Stopped", STOPPED_WITHOUT_CANCEL),
        ("pipeline.stage", "generate", "completed", 0, None, None),
        ("pipeline.stage", "ingest", "failed", 1, "Stopped", STOPPED_WITHOUT_CANCEL),
    ]
    ingest = spans[2]["meta"]["error.stack"]
    assert ingest.startswith("Traceback (most recent call last):\n")
    assert ingest.endswith("asyncio.exceptions.CancelledError\n")
    assert _metrics(datagrams) == [
        "pipeline.stage.duration|d|#stage:generate,status:completed",
        "pipeline.records_processed:1000|c|#stage:generate",
        "pipeline.errors:1|c|#stage:ingest,error_type:Stopped",
        "pipeline.stage.duration|d|#stage:ingest,status:failed",
        "pipeline.runs:1|c|#status:failed",
        "pipeline.duration|d|#status:failed",
    ]


def test_a_cancel_stays_cancelled_and_no_error(
    request: pytest.FixtureRequest,
    tmp_root: Path,
    test_agent: conftest.TestAgent,
    datagrams: socket.socket,
) -> None:
    rows, spans = _stopped_run("cancel", request, tmp_root, test_agent, datagrams.getsockname()[1])
    assert rows == {
        "run": ["cancelled", CANCELLED_IN_PREFECT],
        "stages": [
            ["generate", "completed", None],
            ["ingest", "cancelled", None],
            ["process", "cancelled", None],
            ["transform", "cancelled", None],
            ["export", "cancelled", None],
        ],
    }
    assert [_seen(span) for span in spans] == [
        ("pipeline.flow", "Data Pipeline", "cancelled", 0, None, None),
        ("pipeline.stage", "generate", "completed", 0, None, None),
        ("pipeline.stage", "ingest", "cancelled", 0, None, None),
    ]
    assert _metrics(datagrams) == [
        "pipeline.stage.duration|d|#stage:generate,status:completed",
        "pipeline.records_processed:1000|c|#stage:generate",
        "pipeline.stage.duration|d|#stage:ingest,status:cancelled",
        "pipeline.runs:1|c|#status:cancelled",
        "pipeline.duration|d|#status:cancelled",
    ]
