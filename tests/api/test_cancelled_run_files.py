"""What a run stopped mid-stage leaves in its directory, through the flow's own code on a real
database (app/pipeline/stage_stop.py): a cancelled run keeps only its rejects file, the one file
of it that can still be downloaded (its raw parts and intermediates stayed for
PIPELINE_RETENTION_DAYS); a run stopped without a cancel keeps everything. Each is judged once
the stopped stage's thread has ended: here it writes its file only after the run's end was
recorded, as a stage still running at a cancel did.

The flow is called as a worker's process would call it; Prefect's server, and Prefect's task
machinery, are left out (the stages' tasks are called as their plain functions).
"""

import asyncio
import logging
import shutil
import threading
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest
from prefect.client.schemas.objects import FlowRun

from app.models import Status
from app.pipeline import flows, stops
from app.pipeline import work as stage_work
from app.pipeline.status import CANCELLED_IN_PREFECT, update_pipeline_status
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL
from app.pipeline.store import RunFiles
from app.pipeline.work import StageOutput
from tests.support.rows import add_pipeline, add_run, read_run

FLOW_RUN_ID = "0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10"
# it said "its files were removed, but a rejects file", which read as cut off
CLEARED = "run {} was cancelled: its files were removed, all but its rejects file"
STAGES = ("generate_data", "ingest_data", "process_data", "transform_data", "export_results")


def _flow_run_of(run_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow as a worker's process runs it for the flow run of `run_id`, without Prefect."""
    made = FlowRun(
        id=UUID(FLOW_RUN_ID), flow_id=UUID(int=8), name="t", tags=[f"pipeline-run:{run_id}"]
    )
    monkeypatch.setattr(flows, "FlowRunContext", SimpleNamespace(get=lambda: None))
    monkeypatch.setattr(
        flows, "flow_run", SimpleNamespace(id=made.id, tags=made.tags, flow_name="Data Pipeline")
    )
    monkeypatch.setattr(flows, "get_run_logger", lambda: logging.getLogger("test"))
    for name in STAGES:
        monkeypatch.setattr(flows, name, getattr(flows, name).fn)


def _process_held_until_the_run_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[threading.Event, threading.Event]:
    """The process stage, started, waits for the run's end to be written, then writes its file
    (as a Polars query still running at a stop does)."""
    started, run_ended = threading.Event(), threading.Event()

    def process(files: RunFiles) -> StageOutput:
        started.set()
        assert run_ended.wait(60)  # a bound for a broken build, not a timing
        shutil.copyfile(files.ingested, files.processed)
        return StageOutput(1000, 1000)

    recorded = flows.update_pipeline_status

    async def recording(pipeline_id: int, stage: str | None, *args: Any, **kw: Any) -> bool:
        written = await recorded(pipeline_id, stage, *args, **kw)
        if stage is None:
            run_ended.set()
        return written

    monkeypatch.setattr(stage_work, "process", process)
    monkeypatch.setattr(flows, "update_pipeline_status", recording)
    return started, run_ended


@pytest.mark.usefixtures("database")
@pytest.mark.parametrize(
    ("intent", "api_cancel", "error", "kept"),
    [
        # cancelled in Prefect (the API's cancel, the Prefect UI): only the rejects file
        ("cancel", False, CANCELLED_IN_PREFECT, ["rejects.parquet"]),
        # the API's cancel written before the stop reached the flow
        (None, True, "cancelled through the API", ["rejects.parquet"]),
        # a worker shutting down (`make down`): everything, for the next trigger or a look
        (
            None,
            False,
            STOPPED_WITHOUT_CANCEL,
            ["ingested.parquet", "processed.parquet", "raw", "rejects.parquet"],
        ),
    ],
)
async def test_a_run_stopped_mid_stage_keeps_what_it_may_serve(
    monkeypatch: pytest.MonkeyPatch,
    intent: str | None,
    api_cancel: bool,
    error: str,
    kept: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline_id = await add_pipeline("stopped mid-stage")
    run_id = await add_run(pipeline_id, Status.PENDING, {}, prefect_flow_run_id=FLOW_RUN_ID)
    _flow_run_of(run_id, monkeypatch)
    monkeypatch.setattr(stops, "get_intent", lambda: intent)
    started, _ = _process_held_until_the_run_ended(monkeypatch)

    flow = asyncio.create_task(flows.run_data_pipeline_flow.fn(pipeline_id, 1000))
    assert await asyncio.to_thread(started.wait, 60)
    if api_cancel:
        await update_pipeline_status(
            pipeline_id, None, Status.CANCELLED, "cancelled through the API", run_id=run_id
        )
    flow.cancel()
    with caplog.at_level(logging.INFO, logger="test"), pytest.raises(asyncio.CancelledError):
        await flow

    run = await read_run(run_id)
    assert (run.status, run.error) == (
        Status.FAILED if error == STOPPED_WITHOUT_CANCEL else Status.CANCELLED,
        error,
    )
    root = RunFiles.for_run(run_id).root
    assert sorted(path.name for path in root.iterdir()) == kept
    said = [CLEARED.format(run_id)] if error != STOPPED_WITHOUT_CANCEL else []
    assert [(record.name, record.getMessage()) for record in caplog.records] == [
        ("test", message) for message in said
    ]
