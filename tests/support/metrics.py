"""What a process sends to DogStatsD, received on a UDP socket of the test's (no agent, no tracer)."""

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


def sent(receiver: socket.socket) -> list[str]:
    """Every metric sent so far, without its value for distributions (timings vary)."""
    observability.count("test.end", 1)
    lines: list[str] = []
    while not lines or lines[-1] != "test.end:1|c":
        lines += receiver.recv(65536).decode().splitlines()
    return [
        f"{line.split(':')[0]}|d|{line.split('|', 2)[2]}" if "|d|" in line else line
        for line in lines[:-1]
    ]
