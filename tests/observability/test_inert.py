"""Without an agent configured, app/observability/ is inert: nothing imported, nothing changed."""

import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from app.config import PROJECT_ROOT, Settings
from app.json_logs import JsonLogFormatter
from app.observability import is_enabled
from tests.observability import conftest

# A fresh interpreter, as the API and a flow-run process start: module state and sys.modules clean.
SCRIPT = """
import asyncio, json, logging, sys
from app import observability
from app.pipeline import telemetry
from app.main import create_app

def handlers():
    names = ["", "uvicorn", "prefect", "app"]
    return {name: list(logging.getLogger(name).handlers) for name in names}

before = handlers()
create_app()

@observability.traced("pipeline.trigger", resource="Data Pipeline")
async def trigger(*, pipeline_id: int, run_id: int) -> int:
    return pipeline_id * 10 + run_id

labels = {"datadog.trace_context": "{}"}
with telemetry.flow_run(
    flow_name="Data Pipeline", pipeline_id=1, flow_run_id="f", labels=labels
) as run:
    run.run(2)
    result = asyncio.run(trigger(pipeline_id=1, run_id=2))
    with telemetry.stage("generate", pipeline_id=1, run_id=2, attempt=1) as stage:
        stage.records(10)
    try:
        with telemetry.stage("ingest", pipeline_id=1, run_id=2, attempt=1):
            raise ValueError("boom")
    except ValueError:
        pass
observability.flush()

print(json.dumps({
    "preloaded": observability.preload(),
    "enabled": observability.setup(),
    "result": result,
    "labels": observability.trace_labels(),
    "imported": sorted({m.split(".")[0] for m in sys.modules} & {"ddtrace", "datadog"}),
    "handlers_unchanged": handlers() == before,
    "app_log_level": logging.getLogger("app").level,
}))
"""


def _fresh_interpreter(script: str, **dd_env: str) -> Any:
    """The JSON `script` prints, run without this process's DD_* variables (only `dd_env`);
    it must print nothing else and exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**env, **dd_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    return json.loads(result.stdout)


def test_without_an_agent_nothing_is_imported_changed_or_printed() -> None:
    assert _fresh_interpreter(SCRIPT) == {
        "preloaded": False,
        "enabled": False,
        "result": 12,
        "labels": {},
        "imported": [],
        "handlers_unchanged": True,
        "app_log_level": logging.NOTSET,
    }


PRELOAD = """
import json, sys, threading
from app import observability
print(json.dumps({
    "preloaded": observability.preload(),
    "imported": sorted({m.split(".")[0] for m in sys.modules} & {"ddtrace", "datadog"}),
    "threads": threading.active_count(),
    "enabled_by_preload": observability._datadog is not None,
}))
"""


def test_with_an_agent_the_zygote_can_preload_the_libraries_without_a_thread() -> None:
    # what app/pipeline/warm_start/warm.py calls before the zygote forks: imports only, nothing started
    assert _fresh_interpreter(PRELOAD, DD_AGENT_HOST="127.0.0.1") == {
        "preloaded": True,
        "imported": ["datadog", "ddtrace"],
        "threads": 1,
        "enabled_by_preload": False,
    }


EMPTY_FLAGS = """
import json, os
from app import observability
enabled = observability.setup(process=os.environ["PROCESS"])
from ddtrace import config
from ddtrace.trace import tracer
print(json.dumps({
    "enabled": enabled,
    "tracing": tracer.enabled,
    "log_ids": config._logs_injection,
    "spans_as_they_finish": [config._partial_flush_enabled, config._partial_flush_min_spans],
}))
"""


@pytest.mark.parametrize(("process", "min_spans"), [("run", 1), ("api", 300)])
def test_empty_trace_and_log_flags_mean_the_defaults_as_compose_passes_them(
    process: str, min_spans: int, test_agent: conftest.TestAgent
) -> None:
    """ddtrace reads an empty DD_TRACE_ENABLED, DD_LOGS_INJECTION or
    DD_TRACE_PARTIAL_FLUSH_ENABLED as false, and cannot import with an empty
    DD_TRACE_PARTIAL_FLUSH_MIN_SPANS. A flow run sends each span as it finishes (it may be
    killed mid-run); the API, never killed mid-request, its traces whole (ddtrace's 300)."""
    flags = {
        "DD_TRACE_ENABLED": "",
        "DD_LOGS_INJECTION": "",
        "DD_TRACE_PARTIAL_FLUSH_ENABLED": "",
        "DD_TRACE_PARTIAL_FLUSH_MIN_SPANS": "",
    }
    agent = {"DD_AGENT_HOST": "127.0.0.1", "DD_TRACE_AGENT_PORT": test_agent.url.rsplit(":")[-1]}
    assert _fresh_interpreter(EMPTY_FLAGS, PROCESS=process, **agent, **flags) == {
        "enabled": True,
        "tracing": True,
        "log_ids": True,
        "spans_as_they_finish": [True, min_spans],
    }


def test_an_agent_host_or_an_explicit_trace_flag_turns_it_on() -> None:
    def settings(**env: str) -> Settings:
        return Settings.model_validate(env)  # only these values: the environment is not read

    assert [
        is_enabled(settings()),
        is_enabled(settings(DD_AGENT_HOST="")),
        is_enabled(settings(DD_AGENT_HOST="datadog-agent")),
        is_enabled(settings(DD_TRACE_ENABLED="true")),
        is_enabled(settings(DD_TRACE_ENABLED="false")),
        is_enabled(settings(DD_AGENT_HOST="datadog-agent", DD_TRACE_ENABLED="false")),
    ] == [False, False, True, True, False, True]


def test_json_log_lines_carry_the_correlation_attributes() -> None:
    settings = Settings.model_validate(
        {"DD_SERVICE": "svc", "DD_ENV": "prod", "DD_VERSION": "1.2.3"}
    )
    record = logging.LogRecord("app.x", logging.ERROR, __file__, 1, "run %d failed", (7,), None)
    record.created = 0.25
    record.__dict__.update({"dd.trace_id": "abc123", "dd.span_id": "42", "task_run_id": "t-1"})
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonLogFormatter(settings).format(record))
    assert line.pop("error.stack").endswith("ValueError: boom")
    assert line == {
        "timestamp": "1970-01-01T00:00:00.250+00:00",
        "level": "ERROR",
        "logger": "app.x",
        "message": "run 7 failed",
        "dd.trace_id": "abc123",
        "dd.span_id": "42",
        "dd.service": "svc",
        "dd.env": "prod",
        "dd.version": "1.2.3",
        "task_run_id": "t-1",
        "error.kind": "ValueError",
        "error.message": "boom",
    }
    untraced = logging.LogRecord("app.x", logging.INFO, __file__, 1, "hello", None, None)
    assert {
        k: v
        for k, v in json.loads(JsonLogFormatter(settings).format(untraced)).items()
        if k.startswith("dd.")
    } == {
        "dd.trace_id": "0",
        "dd.span_id": "0",
        "dd.service": "svc",
        "dd.env": "prod",
        "dd.version": "1.2.3",
    }


BAGGAGE = """
import json
from app import observability
observability.setup()
sent = {"x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-sampling-priority": "1",
        "baggage": "session.token=SECRET,user.email=bob%40example.com"}
context = observability.extract(json.dumps(sent))
span = observability.tracer().start_span("t", child_of=context, activate=True)
labels = observability.trace_labels()
span.finish()
print(json.dumps(sorted(json.loads(labels["datadog.trace_context"]))), flush=True)
"""


def test_the_flow_run_label_carries_the_trace_not_a_client_s_baggage() -> None:
    """A client's W3C `baggage` header (anything it chose to send) was stored whole in the flow
    run's label: in Prefect's database and UI, and sent on by the flow-run process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    result = subprocess.run(
        [sys.executable, "-c", BAGGAGE],
        cwd=PROJECT_ROOT,
        # an agent at a closed port: tracing is on, and its sending fails quietly to the log
        env={**env, "DD_AGENT_HOST": "127.0.0.1", "DD_TRACE_AGENT_PORT": "9"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[0]) == [
        "traceparent",
        "tracestate",
        "x-datadog-parent-id",
        "x-datadog-sampling-priority",
        "x-datadog-trace-id",
    ]
