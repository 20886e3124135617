"""An agent that stops answering after a process passed its start-up probe: the process's exit
drops what it has not sent instead of waiting ~21 s for the agent (a flow run held its worker's
slot that long); an agent that answers still gets everything at exit."""

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from app.config import PROJECT_ROOT
from tests.observability import conftest
from tests.support.datadog import dd_env, hung_agent, log_lines, run_python

# A flow-run process (started afresh, or forked from a zygote that had imported ddtrace) whose
# run ends while a send to the agent hangs, then exits as such a process does.
RUN_THEN_EXIT = """
import importlib, json, os, sys
forked = sys.argv[1] == "forked"
if forked:
    from app import observability
    from app.config import get_settings
    from app.pipeline.warm_start.warm import exit_without_teardown
    observability._export_unified_tags(get_settings())
    importlib.import_module("ddtrace.trace")
    if os.fork():
        os.wait()
        os._exit(0)
from app import observability
from app.pipeline import telemetry
observability.setup()
print(json.dumps({"tracing": observability.tracer() is not None}), flush=True)
sys.stdin.readline()  # once the agent has stopped answering
with telemetry.flow_run(flow_name="Data Pipeline", pipeline_id=1, flow_run_id="f", labels={}) as run:
    run.run(2)
    with telemetry.stage("generate", pipeline_id=1, run_id=2, attempt=1) as stage:
        stage.records(10)
sys.stdin.readline()  # once the agent holds a send of this process's spans
with observability.tracer().trace("pipeline.after", resource="unsent"):
    pass  # a span still buffered at exit
print(json.dumps({"exiting": True}), flush=True)
if forked:
    exit_without_teardown(0)
"""


LIBDATADOG = b"user-agent: libdatadog/"
"""How ddtrace's native agent-info poller introduces itself (our probe is http.client's)."""
POLLER = " (libdatadog)"
ALL_READ = "GET /all-read HTTP/1.1"


@dataclass
class SilentAgent:
    """A socket that answers GET /info (the start-up probe, ddtrace's own) until it is told to
    stop, then takes every connection and answers nothing; the request lines it was sent, each
    with POLLER when ddtrace's native agent-info poller sent it."""

    listener: socket.socket
    port: int
    requests: list[str] = field(default_factory=list)
    sent_traces: threading.Event = field(default_factory=threading.Event)
    silent: threading.Event = field(default_factory=threading.Event)
    _held: list[socket.socket] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)
    _heard: threading.Condition = field(default_factory=threading.Condition)

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            reader = threading.Thread(target=self._read, args=(connection,), daemon=True)
            self._readers.append(reader)
            reader.start()

    def all_read(self) -> list[str]:
        """The requests, once every connection made so far has been taken and read: call it
        after the processes that talk to the agent have exited (their connections are complete
        or closed). A last connection of its own, taken after all of theirs (one listener takes
        its connections in order), says when."""
        with socket.create_connection(("127.0.0.1", self.port)) as last, self._heard:
            last.sendall(f"{ALL_READ}\r\n\r\n".encode())
            self._heard.wait_for(lambda: ALL_READ in self.requests)
        for reader in list(self._readers):
            reader.join()
        return [r for r in self.requests if r != ALL_READ]

    def _read(self, connection: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = connection.recv(65536)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode()
        with self._heard:
            self.requests.append(f"{line}{POLLER}" if LIBDATADOG in head.lower() else line)
            self._heard.notify_all()
        if line == "GET /info HTTP/1.1" and not self.silent.is_set():
            body = b'{"version": "7.99.0", "endpoints": ["/v0.4/traces", "/v0.5/traces"]}'
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            connection.close()
            return
        if line.endswith("/traces HTTP/1.1"):
            self.sent_traces.set()
        self._held.append(connection)  # never answered, never closed


@contextmanager
def silent_agent() -> Iterator[SilentAgent]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        agent = SilentAgent(listener, listener.getsockname()[1])
        threading.Thread(target=agent.serve, daemon=True).start()
        try:
            yield agent
        finally:
            for connection in agent._held:
                connection.close()


@pytest.mark.parametrize("start", ["fresh", "forked"])
def test_an_agent_that_goes_silent_after_the_probe_does_not_hold_the_exit(
    start: str, statsd_port: int
) -> None:
    """The probe passed, so the process traced; the agent then stopped answering, and ddtrace's
    exit waited for it: measured 42.6 s (the send under way when the run ended, ~21 s, then the
    exit's own), with ddtrace's `failed to send, dropping 2 traces … timed out` as the only word
    of it. Now the exit asks the agent once (1 s) and leaves ddtrace's sends behind: 1.0-1.4 s.
    What the agent was sent says so, whatever the machine's load: after the run's send, the
    exit's one GET /info, not the dozen sends of an exit waiting on the agent (a hang is
    pytest-timeout's)."""
    with silent_agent() as agent:
        process = subprocess.Popen(
            [sys.executable, "-c", RUN_THEN_EXIT, start],
            cwd=PROJECT_ROOT,
            env=dd_env(
                DD_AGENT_HOST="127.0.0.1",
                DD_TRACE_AGENT_PORT=str(agent.port),
                DD_DOGSTATSD_PORT=str(statsd_port),
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdin is not None and process.stdout is not None
            assert json.loads(process.stdout.readline()) == {"tracing": True}
            agent.silent.set()
            process.stdin.write("run\n")
            process.stdin.flush()
            # the run's end sends its spans at once (observability.flush): that send hangs
            assert agent.sent_traces.wait(60)
            process.stdin.write("exit\n")
            process.stdin.flush()
            assert json.loads(process.stdout.readline()) == {"exiting": True}
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        requests = agent.all_read()
    assert process.returncode == 0
    assert log_lines(stderr) == [
        (
            "WARNING",
            "app.observability",
            f"the Datadog agent at http://127.0.0.1:{agent.port} did not answer GET /info at exit "
            "(1 s at most): the spans this process had not sent are dropped, not waited for",
        )
    ]
    # the start-up probe (answered), the run's end's send (held), the exit's one question; on a
    # loaded machine ddtrace's writer may have tried that send once more before the exit (seen
    # once in CI) — an exit that waited for the silent agent sent it 12-13 times
    sent = [r for r in requests if not r.endswith(POLLER)]
    assert sent[:2] == ["GET /info HTTP/1.1", "POST /v0.5/traces HTTP/1.1"], sent
    assert sent.count("GET /info HTTP/1.1") == 2, sent
    assert set(sent[2:]) <= {"GET /info HTTP/1.1", "POST /v0.5/traces HTTP/1.1"}, sent
    assert sent.count("POST /v0.5/traces HTTP/1.1") <= 2, sent
    # ddtrace's native poller asks GET /info on its own schedule (once in the runs seen), and
    # only that
    assert {r for r in requests if r.endswith(POLLER)} <= {f"GET /info HTTP/1.1{POLLER}"}


ANSWERED_EXIT = """
from app import observability
observability.setup()
for n in range(3):
    with observability.tracer().trace("pipeline.exit", resource=f"exit-{n}"):
        pass  # sent by ddtrace's flush at exit at the latest
"""
ANSWERED_SERVICE = "pipeline-exit-test"


def test_an_agent_that_answers_at_exit_gets_the_rest(
    test_agent: conftest.TestAgent, statsd_port: int
) -> None:
    """The exit asks the agent first; one that answers gets ddtrace's flush as before."""
    result = subprocess.run(
        [sys.executable, "-c", ANSWERED_EXIT],
        cwd=PROJECT_ROOT,
        env=dd_env(
            DD_AGENT_HOST="127.0.0.1",
            DD_TRACE_AGENT_PORT=test_agent.url.rsplit(":", 1)[1],
            DD_DOGSTATSD_PORT=str(statsd_port),
            DD_SERVICE=ANSWERED_SERVICE,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stderr == ""
    assert sorted(
        span["resource"] for span in test_agent.spans() if span["service"] == ANSWERED_SERVICE
    ) == ["exit-0", "exit-1", "exit-2"]


API_START = """
import json
from app import observability
observability.setup(process="api")
print(json.dumps({"tracing": observability.tracer() is not None}))
"""


def test_the_api_traces_even_if_the_agent_hangs_at_its_start(statsd_port: int) -> None:
    """The API asked once, at its start, and an agent that hung then left it untraced until it
    was restarted. It runs for days: it now traces anyway (ddtrace's 3 s wait at its start is
    paid once, its traces are sent once the agent answers) and only its exit asks again."""
    with hung_agent() as port:
        result = run_python(
            API_START,
            DD_AGENT_HOST="127.0.0.1",
            DD_TRACE_AGENT_PORT=str(port),
            DD_DOGSTATSD_PORT=str(statsd_port),
        )
    assert json.loads(result.stdout) == {"tracing": True}
    assert log_lines(result.stderr) == [
        (
            "WARNING",
            "app.observability",
            f"the Datadog agent at http://127.0.0.1:{port} accepts connections but did not answer "
            "GET /info within 1 s: tracing is on; its traces are sent once it answers",
        ),
        (
            "WARNING",
            "app.observability",
            f"the Datadog agent at http://127.0.0.1:{port} did not answer GET /info at exit "
            "(1 s at most): the spans this process had not sent are dropped, not waited for",
        ),
    ]


# The API's end under `docker stop`: uvicorn's SIGTERM handler (here, the default one ddtrace's
# wraps) ends it by the signal once it has stopped serving, and no exit hook runs.
API_SIGTERMED = """
import signal
from app import observability
observability.setup(process="api")
for n in range(3):
    with observability.tracer().trace("api.request", resource=f"request-{n}"):
        pass
signal.raise_signal(signal.SIGTERM)
print("not reached", flush=True)
"""


def test_a_sigterm_to_the_api_asks_the_agent_too(statsd_port: int) -> None:
    """ddtrace's SIGTERM handler flushed first (5 s at most for a hung agent) and then passed the
    signal on, which ended the process with no exit hook: no word of the dropped spans."""
    with hung_agent() as port:
        result = run_python(
            API_SIGTERMED,
            check=False,
            DD_AGENT_HOST="127.0.0.1",
            DD_TRACE_AGENT_PORT=str(port),
            DD_DOGSTATSD_PORT=str(statsd_port),
        )
    assert (result.returncode, result.stdout) == (-15, "")
    assert log_lines(result.stderr)[-1] == (
        "WARNING",
        "app.observability",
        f"the Datadog agent at http://127.0.0.1:{port} did not answer GET /info at exit "
        "(1 s at most): the spans this process had not sent are dropped, not waited for",
    )
