"""pipeline.runs counts each run by how it ended, through a real DogStatsD client and socket."""

import socket
from collections.abc import Iterator

import pytest

from app import observability
from app.config import Settings


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


def _runs_metric(receiver: socket.socket) -> str:
    while True:
        for line in receiver.recv(65536).decode().splitlines():
            if line.startswith("pipeline.runs:"):
                return line


def test_a_run_cancelled_before_it_began_counts_as_cancelled(statsd: socket.socket) -> None:
    with observability.flow_run(
        flow_name="Data Pipeline", pipeline_id=1, flow_run_id="fr", labels={}
    ) as tracking:
        tracking.cancelled = True  # the flow returned Cancelled: no exception went through
    assert _runs_metric(statsd) == "pipeline.runs:1|c|#status:cancelled"
    with observability.flow_run(
        flow_name="Data Pipeline", pipeline_id=1, flow_run_id="fr", labels={}
    ):
        pass
    assert _runs_metric(statsd) == "pipeline.runs:1|c|#status:completed"
