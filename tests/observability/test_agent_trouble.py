"""An agent that accepts connections and never answers, and a flow-run process that is killed:
what each costs a run, and what still reaches Datadog."""

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from app.config import PROJECT_ROOT
from tests.observability import conftest
from tests.observability.test_agent_exit import POLLER, silent_agent
from tests.support.datadog import dd_env, hung_agent, log_lines, run_python

# A flow-run process: started afresh, or forked from the zygote, which had imported ddtrace while
# the agent still answered (what its preload does), and exiting as a forked run does.
HUNG_RUN = """
import importlib, json, os, sys
forked = sys.argv[1] == "forked"
if forked:
    from app import observability
    from app.config import get_settings
    from app.pipeline.warm_start.warm import exit_without_teardown
    observability._export_unified_tags(get_settings())
    importlib.import_module("ddtrace.trace")
    pid = os.fork()
    if pid:
        os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
from app import observability
from app.pipeline import telemetry
with telemetry.flow_run(flow_name="Data Pipeline", pipeline_id=1, flow_run_id="f", labels={}) as run:
    run.run(2)
    with telemetry.stage("generate", pipeline_id=1, run_id=2, attempt=1) as stage:
        stage.records(10)
print(json.dumps({
    "tracing": observability.tracer() is not None,
    "imported": sorted({m.split(".")[0] for m in sys.modules} & {"ddtrace", "datadog"}),
}), flush=True)
if forked:
    exit_without_teardown(0)
"""


@pytest.mark.parametrize("start", ["fresh", "forked"])
def test_an_agent_that_never_answers_turns_tracing_off_instead_of_holding_the_run(
    start: str, statsd_port: int
) -> None:
    """ddtrace waited 3 s when it started (each run's start) and ~21 s at the process's exit
    for such an agent: measured 26 s for a fresh process and 24 s for a forked run that took
    a second without it. Now the process asks the agent first (1 s at most) and traces nothing:
    the agent was asked GET /info once and sent nothing, whatever the machine's load (measured
    2.4 s fresh, interpreter and imports included, and 1.3 s forked; a hang is
    pytest-timeout's)."""
    with silent_agent() as agent:
        agent.silent.set()  # it never answers, from the first connection on
        result = run_python(
            HUNG_RUN,
            start,
            DD_AGENT_HOST="127.0.0.1",
            DD_TRACE_AGENT_PORT=str(agent.port),
            DD_DOGSTATSD_PORT=str(statsd_port),
        )
        requests = agent.all_read()
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {
            "tracing": False,
            "imported": ["datadog", "ddtrace"] if start == "forked" else ["datadog"],
        }
    ]
    assert log_lines(result.stderr) == [
        (
            "WARNING",
            "app.observability",
            f"the Datadog agent at http://127.0.0.1:{agent.port} accepts connections but did not "
            "answer GET /info within 1 s: tracing is off in this process (metrics and JSON "
            "logs stay on)",
        )
    ]
    # the run's probe, and no trace sent (nor tried) at its start, its end or its exit
    assert [r for r in requests if not r.endswith(POLLER)] == ["GET /info HTTP/1.1"]
    # the zygote's ddtrace, imported before the fork, polls GET /info on its own, only that
    assert {r for r in requests if r.endswith(POLLER)} <= (
        {f"GET /info HTTP/1.1{POLLER}"} if start == "forked" else set()
    )


PRELOAD = """
import json, sys
from app import observability
print(json.dumps({
    "preloaded": observability.preload(),
    "imported": sorted({m.split(".")[0] for m in sys.modules} & {"ddtrace", "datadog"}),
}))
"""


def test_the_zygote_does_not_import_ddtrace_for_an_agent_that_never_answers() -> None:
    """Its imported ddtrace cost the zygote's first fork up to 3 s, and its exit 6 s."""
    with hung_agent() as port:
        result = run_python(PRELOAD, DD_AGENT_HOST="127.0.0.1", DD_TRACE_AGENT_PORT=str(port))
    assert (json.loads(result.stdout), result.stderr) == (
        {"preloaded": False, "imported": []},
        "",
    )


KILLED_RUN = """
import time
from app.pipeline import telemetry
with telemetry.flow_run(flow_name="Data Pipeline", pipeline_id=1, flow_run_id="killed", labels={}):
    with telemetry.stage("generate", pipeline_id=1, run_id=2, attempt=1) as stage:
        stage.records(7)
    print("generated", flush=True)
    time.sleep(300)  # the transform stage, say, when the process is killed
"""
KILLED_SERVICE = "pipeline-killed-test"


def _killed_spans(agent: conftest.TestAgent) -> list[dict[str, Any]]:
    return [span for span in agent.spans() if span["service"] == KILLED_SERVICE]


def test_a_killed_flow_run_process_has_sent_its_finished_stages(
    test_agent: conftest.TestAgent, statsd_port: int
) -> None:
    """A trace was sent only when its root span ended: a flow-run process killed (OOM, SIGKILL)
    before its flow span ended sent nothing, not even the stages it had finished."""
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN],
        cwd=PROJECT_ROOT,
        env=dd_env(
            DD_AGENT_HOST="127.0.0.1",
            DD_TRACE_AGENT_PORT=test_agent.url.rsplit(":", 1)[1],
            DD_DOGSTATSD_PORT=str(statsd_port),
            DD_SERVICE=KILLED_SERVICE,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "generated\n"
        deadline = time.monotonic() + 15  # ddtrace's writer sends every second
        while not _killed_spans(test_agent) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    assert [
        (
            s["name"],
            s["resource"],
            s["meta"]["status"],
            s["meta"]["run_id"],
            s["metrics"]["records_out"],
            s["error"],
        )
        for s in _killed_spans(test_agent)
    ] == [("pipeline.stage", "generate", "completed", "2", 7.0, 0)]
