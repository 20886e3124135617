"""Datadog's own test agent and a DogStatsD socket, and a stack of our own that reports to them."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from app.stack.topology import Stack
from tests.conftest import new_database_url
from tests.support.postgres import create_database, free_port

DD_SERVICE, DD_ENV, DD_VERSION = "pipeline-obs-test", "test", "9.8.7"


@dataclass
class TestAgent:
    """ddapm-test-agent on a port of its own: what ddtrace sent it, as Datadog would receive it."""

    url: str
    process: subprocess.Popen[bytes]

    def spans(self) -> list[dict[str, Any]]:
        traces = httpx.get(f"{self.url}/test/traces", timeout=10).json()
        return [span for trace in traces for span in trace]


@dataclass
class StatsdReceiver:
    """A UDP socket standing in for the agent's DogStatsD port; keeps every datagram line."""

    sock: socket.socket
    lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def receive_forever(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except OSError:
                return
            self.lines.extend(line for line in data.decode().splitlines() if line)


@dataclass
class ObservedStack:
    stack: Stack
    agent: TestAgent
    statsd: StatsdReceiver
    log_dir: Path


@pytest.fixture(scope="package")
def test_agent(tmp_root: Path) -> Iterator[TestAgent]:
    port = free_port()
    workdir = tmp_root / "dd-test-agent"
    workdir.mkdir()
    log = (workdir / "agent.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ddapm-test-agent")),
            f"--port={port}",
            f"--otlp-http-port={free_port()}",
            f"--otlp-grpc-port={free_port()}",
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    agent = TestAgent(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{agent.url}/test/traces", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"ddapm-test-agent did not start; see {workdir / 'agent.log'}")
            time.sleep(0.2)
        yield agent
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture(scope="package")
def statsd() -> Iterator[StatsdReceiver]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    receiver = StatsdReceiver(sock)
    thread = threading.Thread(target=receiver.receive_forever, daemon=True)
    thread.start()
    yield receiver
    sock.close()


@pytest.fixture(scope="package")
def observed_stack(
    request: pytest.FixtureRequest,
    tmp_root: Path,
    test_agent: TestAgent,
    statsd: StatsdReceiver,
) -> Iterator[ObservedStack]:
    """Prefect server (on PostgreSQL), worker and API (on SQLite), every process reporting to the
    test agent. Prefect's own server on SQLite stalled for its 60 s busy timeout ("database is
    locked") under this package's three runs at once on a loaded CI machine, and the run Prefect
    was to run again ended Failed after one attempt."""
    root = tmp_root / "stack-observability"
    prefect_database = create_database(
        request.getfixturevalue("pg_base_url"), "prefect_observability", extensions=("pg_trgm",)
    )
    env = {
        **os.environ,
        "DATABASE_URL": new_database_url("sqlite", request, tmp_root),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_database,
        "PIPELINE_DATA_DIR": str(root / "data"),
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PIPELINE_WATCHDOG_ENABLED": "false",
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_TRACE_AGENT_PORT": test_agent.url.rsplit(":", 1)[1],
        "DD_DOGSTATSD_PORT": str(statsd.port),
        "DD_SERVICE": DD_SERVICE,
        "DD_ENV": DD_ENV,
        "DD_VERSION": DD_VERSION,
    }
    stack = Stack(
        env=env,
        prefect_port=free_port(),
        api_port=free_port(),
        state_dir=root,
        log_dir=root / "logs",
    )
    stack.start()
    try:
        yield ObservedStack(stack, test_agent, statsd, root / "logs")
    finally:
        stack.stop()


@pytest.fixture(scope="package")
async def api(observed_stack: ObservedStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=observed_stack.stack.api_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="package")
async def prefect(observed_stack: ObservedStack) -> AsyncIterator[PrefectClient]:
    async with PrefectClient(api=observed_stack.stack.prefect_api_url) as client:
        yield client


@pytest.fixture
def statsd_port() -> Iterator[int]:
    """A UDP port that takes a process's metrics (unread), so that nothing warns about them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        yield receiver.getsockname()[1]
