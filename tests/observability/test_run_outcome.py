"""Each run counts once in pipeline.runs, by how it ended, and a cancel is no error: through a
real DogStatsD client and UDP socket."""

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest

from app import observability
from app.config import PROJECT_ROOT, Settings
from app.pipeline import telemetry


def _flow_run() -> AbstractContextManager[telemetry.RunTracking]:
    return telemetry.flow_run(flow_name="Data Pipeline", pipeline_id=1, flow_run_id="fr", labels={})


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """Metrics on, no tracer: what a run sends arrives on this UDP socket."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    settings = Settings.model_validate(
        {"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(receiver.getsockname()[1])}
    )
    monkeypatch.setattr(observability, "_set_up", True)
    monkeypatch.setattr(
        observability,
        "_datadog",
        observability._Datadog(None, observability._start_metrics(settings)),
    )
    yield receiver
    receiver.close()


def _sent(receiver: socket.socket) -> list[str]:
    """Every metric sent so far, without its value for distributions (timings vary)."""
    observability.count("test.end", 1)
    lines: list[str] = []
    while not lines or lines[-1] != "test.end:1|c":
        lines += receiver.recv(65536).decode().splitlines()
    return [
        f"{line.split(':')[0]}|d|{line.split('|', 2)[2]}" if "|d|" in line else line
        for line in lines[:-1]
    ]


def test_a_run_cancelled_before_it_began_counts_as_cancelled(statsd: socket.socket) -> None:
    with _flow_run() as tracking:
        tracking.cancelled = True  # the flow returned Cancelled: no exception went through
    with _flow_run():
        pass
    assert _sent(statsd) == [
        "pipeline.runs:1|c|#status:cancelled",
        "pipeline.duration|d|#status:cancelled",
        "pipeline.runs:1|c|#status:completed",
        "pipeline.duration|d|#status:completed",
    ]


def test_a_stop_without_a_cancel_fails_and_a_settled_run_is_not_counted_again(
    statsd: socket.socket,
) -> None:
    """A SIGTERM with no cancel reaches the flow as CancelledError: it failed, it was no cancel.
    A flow run whose run the watchdog had already failed (and counted) counts nothing."""
    with pytest.raises(asyncio.CancelledError), _flow_run() as tracking:
        tracking.stopped = True
        raise asyncio.CancelledError
    with _flow_run() as tracking:
        tracking.cancelled, tracking.uncounted = True, True
    assert _sent(statsd) == [
        "pipeline.runs:1|c|#status:failed",
        "pipeline.duration|d|#status:failed",
    ]


def test_a_run_cancelled_in_a_stage_is_no_error(statsd: socket.socket) -> None:
    with (
        pytest.raises(asyncio.CancelledError),
        _flow_run(),
        telemetry.stage("ingest", pipeline_id=1, run_id=2, attempt=1),
    ):
        raise asyncio.CancelledError
    assert _sent(statsd) == [
        "pipeline.stage.duration|d|#stage:ingest,status:cancelled",
        "pipeline.runs:1|c|#status:cancelled",
        "pipeline.duration|d|#status:cancelled",
    ]


def test_an_attempt_prefect_runs_again_is_not_counted_as_a_run(statsd: socket.socket) -> None:
    """PIPELINE_FLOW_RETRIES: Prefect calls the flow again in the same process; the run counts
    once, as its last attempt ended."""
    for outcome in ("retrying", "failed"):
        with pytest.raises(RuntimeError), _flow_run() as tracking:
            tracking.retrying = outcome == "retrying"
            with telemetry.stage("process", pipeline_id=1, run_id=2, attempt=1):
                raise RuntimeError("disk full")
    assert _sent(statsd) == [
        "pipeline.errors:1|c|#stage:process,error_type:RuntimeError",
        "pipeline.stage.duration|d|#stage:process,status:failed",
        "pipeline.errors:1|c|#stage:process,error_type:RuntimeError",
        "pipeline.stage.duration|d|#stage:process,status:failed",
        "pipeline.runs:1|c|#status:failed",
        "pipeline.duration|d|#status:failed",
    ]


def test_a_run_the_watchdog_settles_is_counted(statsd: socket.socket) -> None:
    telemetry.run_ended("failed")
    assert _sent(statsd) == ["pipeline.runs:1|c|#status:failed"]


UNREACHABLE_AGENT = """
import json, threading
from app.pipeline import telemetry
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
