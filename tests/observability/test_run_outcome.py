"""Each run counts once in pipeline.runs, by how it ended, where its row ended, and a cancel is no
error: through a real DogStatsD client and UDP socket."""

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from contextlib import AbstractContextManager

import pytest
from prefect.exceptions import TerminationSignal

from app import observability
from app.config import PROJECT_ROOT, Settings
from app.models import Status
from app.pipeline import stops, telemetry
from app.pipeline.status import update_pipeline_status
from tests.support.metrics import sent, statsd
from tests.support.rows import add_pipeline, add_run

__all__ = ["statsd"]  # the fixture, shared


def _flow_run() -> AbstractContextManager[telemetry.RunTracking]:
    return telemetry.flow_run(flow_name="Data Pipeline", pipeline_id=1, flow_run_id="fr", labels={})


def test_a_flow_run_counts_a_run_only_when_it_never_had_a_row(statsd: socket.socket) -> None:
    """A run counts where its row moved to a final status (below); a flow run with no row (its
    pipeline does not exist) is counted by the flow; one refused before it began, by whoever ended
    its run (the API's cancel, the watchdog)."""
    with pytest.raises(RuntimeError), _flow_run():
        raise RuntimeError("pipeline 9 does not exist")
    with _flow_run() as tracking:
        tracking.cancelled, tracking.uncounted = True, True
    with _flow_run() as tracking:
        tracking.run(2)  # claimed: its row counts it
    assert sent(statsd) == [
        "pipeline.errors:1|c|#stage:flow,error_type:RuntimeError",
        "pipeline.runs:1|c|#status:failed",
        "pipeline.duration|d|#status:failed",
    ]


@pytest.mark.parametrize("stop", [asyncio.CancelledError, TerminationSignal])
def test_a_stop_without_a_cancel_is_an_error_and_a_cancel_is_none(
    statsd: socket.socket, stop: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect's SIGTERM handler raises TerminationSignal wherever the process is: it was counted
    as a failure with an error even for a cancel. A stop with no cancel behind it is a failure,
    as its rows say: its stage's status is failed (it was cancelled) and the stage counts the
    error, once; between stages the flow counts it."""
    for intent in (None, "cancel"):  # what Prefect's runner said before its SIGTERM
        monkeypatch.setattr(stops, "get_intent", lambda intent=intent: intent)
        with pytest.raises(stop), _flow_run() as tracking:
            tracking.run(2)
            with telemetry.stage("ingest", pipeline_id=1, run_id=2, attempt=1):
                raise stop(15) if stop is TerminationSignal else stop()
    with pytest.raises(stop), _flow_run() as tracking:
        tracking.run(2)
        tracking.stopped = True
        raise stop(15) if stop is TerminationSignal else stop()
    assert sent(statsd) == [
        "pipeline.errors:1|c|#stage:ingest,error_type:Stopped",
        "pipeline.stage.duration|d|#stage:ingest,status:failed",
        "pipeline.stage.duration|d|#stage:ingest,status:cancelled",
        "pipeline.errors:1|c|#stage:flow,error_type:Stopped",
    ]


def test_an_attempt_prefect_runs_again_is_not_counted_as_a_run(statsd: socket.socket) -> None:
    """PIPELINE_FLOW_RETRIES: Prefect calls the flow again in the same process; a flow run with
    no row counts once, as its last attempt ended."""
    for outcome in ("retrying", "failed"):
        with pytest.raises(RuntimeError), _flow_run() as tracking:
            tracking.retrying = outcome == "retrying"
            with telemetry.stage("process", pipeline_id=1, run_id=2, attempt=1):
                raise RuntimeError("disk full")
    assert sent(statsd) == [
        "pipeline.errors:1|c|#stage:process,error_type:RuntimeError",
        "pipeline.stage.duration|d|#stage:process,status:failed",
        "pipeline.errors:1|c|#stage:process,error_type:RuntimeError",
        "pipeline.stage.duration|d|#stage:process,status:failed",
        "pipeline.runs:1|c|#status:failed",
        "pipeline.duration|d|#status:failed",
    ]


@pytest.mark.usefixtures("database")
async def test_a_run_counts_once_where_its_row_ends_whoever_ends_it(statsd: socket.socket) -> None:
    """The API's cancel of a run Prefect had not started was never counted (no flow-run process);
    a flow whose final write was refused (the cancel came first, or the watchdog) counted its own
    outcome as well."""
    pipeline_id = await add_pipeline("counted")
    cancelled = await add_run(pipeline_id, Status.PENDING, {})
    assert await update_pipeline_status(pipeline_id, None, Status.CANCELLED, run_id=cancelled)
    assert not await update_pipeline_status(pipeline_id, None, Status.COMPLETED, run_id=cancelled)
    failed = await add_run(pipeline_id, Status.PENDING, {})
    for stage, status, retrying in (
        ("generate", Status.RUNNING, None),
        ("generate", Status.FAILED, "Prefect runs the flow again in 10 s"),  # not an end
        ("generate", Status.RUNNING, None),
        ("generate", Status.FAILED, None),
    ):
        await update_pipeline_status(
            pipeline_id, stage, status, run_id=failed, error="boom", retrying=retrying
        )
    assert not await update_pipeline_status(pipeline_id, None, Status.FAILED, run_id=failed)
    assert sent(statsd) == [
        "pipeline.runs:1|c|#status:cancelled",
        "pipeline.runs:1|c|#status:failed",
        "pipeline.duration|d|#status:failed",
    ]


UNREACHABLE_AGENT = """
import json, threading
from app.pipeline import stops, telemetry
with telemetry.flow_run(flow_name="Data Pipeline", pipeline_id=1, flow_run_id="f", labels={}):
    with telemetry.stage("generate", pipeline_id=1, run_id=2, attempt=1):
        pass
flushing = [t for t in threading.enumerate() if t.name == "ddtrace-flush"]
alive = [t.is_alive() for t in flushing]
for t in flushing:
    t.join()
print(json.dumps({"flushing_after_the_run": alive}))
"""


def test_an_agent_that_does_not_answer_does_not_hold_up_the_run() -> None:
    """ddtrace retries a flush to an unreachable agent for ~3 s: the run's flush goes on after the
    flow has returned, on a thread of its own, instead of before."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens on it once closed
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    result = subprocess.run(
        [sys.executable, "-c", UNREACHABLE_AGENT],
        cwd=PROJECT_ROOT,
        env={**env, "DD_AGENT_HOST": "127.0.0.1", "DD_TRACE_AGENT_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == {"flushing_after_the_run": [True]}


def test_an_agent_that_is_down_is_said_once_a_minute_not_per_metric(
    statsd: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """Every metric sent to a closed port logged 'Error submitting packet' into the run's log."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = Settings.model_validate({"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": port})
    down = observability._start_metrics(settings)
    with caplog.at_level(logging.WARNING, logger="datadog.dogstatsd"):
        for _ in range(20):
            down.increment("pipeline.errors", 1)
    warnings = [r for r in caplog.records if r.name == "datadog.dogstatsd"]
    assert [r.getMessage().split(":")[0] for r in warnings] == ["Error submitting packet"]
