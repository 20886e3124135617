"""Datadog: one trace from the API request through the flow run to every stage, the pipeline
metrics over DogStatsD, and JSON logs carrying the trace (app/json_logs.py) — this package is the
only one importing ddtrace/datadog (ddtrace's start: tracing.py; asking the agent: agent.py).

Off unless an agent is configured (DD_AGENT_HOST set, or DD_TRACE_ENABLED=true): then neither
library is even imported, no log handler changes, and every hook below returns at its first line.
An agent that takes connections and does not answer turns tracing off in a flow-run process that
finds it so at its start, with a warning; metrics and JSON logs stay on. At any process's exit, an
agent that does not answer is not waited for (at_exit.py).
"""

import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from app.config import Settings, get_settings
from app.json_logs import use_json_logs
from app.observability import tracing
from app.observability.agent import PROBE_SECONDS, hangs, trace_agent_url
from app.observability.at_exit import bound_exit

if TYPE_CHECKING:
    from datadog.dogstatsd.base import DogStatsd
    from ddtrace.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

TRACE_LABEL = "datadog.trace_context"
"""The flow-run label carrying the trigger's trace context (JSON propagation headers)."""

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _Datadog:
    tracer: "Tracer | None"
    statsd: "DogStatsd | None"


_datadog: _Datadog | None = None
_set_up = False
_log = logging.getLogger(__name__)


def is_enabled(settings: Settings) -> bool:
    """An agent is configured: metrics and JSON logs on, and tracing unless DD_TRACE_ENABLED=false."""
    return bool(settings.dd_agent_host) or settings.dd_trace_enabled is True


def setup(settings: Settings | None = None, *, process: Literal["run", "api"] = "run") -> bool:
    """Turn Datadog on in this process when an agent is configured (once); True when on.

    A flow-run `process` sends each span as it finishes (it may be killed mid-run) and traces
    nothing if the agent hangs when it starts (it would wait 3 s for it); the API, which runs for
    days, sends each trace whole and traces whatever the agent does at its start. Either way
    the exit waits only for an agent that answers then (at_exit.py)."""
    global _datadog, _set_up
    if _set_up:
        return _datadog is not None
    _set_up = True
    settings = settings or get_settings()
    if not is_enabled(settings):
        return False
    _export_unified_tags(settings, partial_flush=process == "run")
    tracer, hung = None, None
    if settings.dd_trace_enabled is not False:
        if hangs(url := trace_agent_url(settings)):
            hung = url
        if hung is None or process == "api":
            tracer = tracing.start(settings)
            bound_exit(tracer, url)
        else:
            tracing.quiet()
    _datadog = _Datadog(tracer, _start_metrics(settings))
    correlate = tracer is not None and tracing.logs_injection()
    use_json_logs(settings, run_trace=tracing.run_trace if correlate else None)
    if hung:
        _log.warning(
            "the Datadog agent at %s accepts connections but did not answer GET /info within "
            "%g s: %s",
            hung,
            PROBE_SECONDS,
            "tracing is on; its traces are sent once it answers"
            if tracer
            else "tracing is off in this process (metrics and JSON logs stay on)",
        )
    return True


def preload() -> bool:
    """Import Datadog's libraries now when an agent is configured, turning nothing on; True if so.

    The zygote (app/pipeline/warm_start/) does this so that a run it forks does not spend ~0.75 s
    importing them. Importing starts no thread, and ddtrace restarts its own after a fork. What
    ddtrace reads from the environment at import gets the settings' values first, as in setup().
    """
    settings = get_settings()
    if not is_enabled(settings):
        return False
    if settings.dd_trace_enabled is not False and hangs(trace_agent_url(settings)):
        return False  # importing ddtrace would cost the zygote's exit and first fork ~3 s each
    _export_unified_tags(settings)  # partial flush included: it forks flow runs
    for module in ("datadog.dogstatsd.base", "ddtrace.trace", "ddtrace.contrib.sqlalchemy"):
        importlib.import_module(module)
    return True


def _export_unified_tags(settings: Settings, *, partial_flush: bool = True) -> None:
    """ddtrace and DogStatsD read DD_* from the environment: give them the settings' values."""
    values = {
        "DD_SERVICE": settings.dd_service,
        "DD_ENV": settings.dd_env,
        "DD_VERSION": settings.dd_version,
        "DD_AGENT_HOST": settings.dd_agent_host or "127.0.0.1",
        "DD_TRACE_AGENT_PORT": str(settings.dd_trace_agent_port),
        "DD_DOGSTATSD_PORT": str(settings.dd_dogstatsd_port),
        "DD_TRACE_LOG_STREAM_HANDLER": "false",  # ddtrace's own warnings go through our JSON logs
    }
    if partial_flush:
        # each span is sent as it finishes (not when its trace's root does): a flow-run process
        # that is killed has sent its finished stages. The API (~55 µs a span) is not killed
        # mid-request: ddtrace's default (300 spans) sends its requests' traces whole.
        values["DD_TRACE_PARTIAL_FLUSH_MIN_SPANS"] = "1"
    for name, value in values.items():
        if not os.environ.get(name):  # unset or empty (compose passes DD_VERSION empty)
            os.environ[name] = value
    # ddtrace reads an empty flag as false, and fails to import on an empty number
    empty_means_default = (
        "DD_TRACE_ENABLED",
        "DD_LOGS_INJECTION",
        "DD_TRACE_PARTIAL_FLUSH_ENABLED",
        "DD_TRACE_PARTIAL_FLUSH_MIN_SPANS",  # the API's, as compose passes it
    )
    for name in empty_means_default:
        if os.environ.get(name) == "":
            del os.environ[name]


class _OncePerMinute(logging.Filter):
    """The first of a logger's warnings, then one a minute: an agent that is down (every metric
    fails to send) is said, not written once per metric into every run's log."""

    def __init__(self) -> None:
        super().__init__()
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < 60:
            return False
        self._last = now
        return True


def _start_metrics(settings: Settings) -> "DogStatsd":
    from datadog.dogstatsd.base import DogStatsd

    statsd_log = logging.getLogger("datadog.dogstatsd")
    if not any(isinstance(f, _OncePerMinute) for f in statsd_log.filters):
        statsd_log.addFilter(_OncePerMinute())
    return DogStatsd(
        host=settings.dd_agent_host or "127.0.0.1",
        port=settings.dd_dogstatsd_port,
        disable_telemetry=True,
    )


def traced_engine(engine: "AsyncEngine") -> "AsyncEngine":
    """The engine, with ddtrace's SQLAlchemy integration attached when tracing is on."""
    if _datadog is not None and _datadog.tracer is not None:
        from ddtrace.contrib.sqlalchemy import trace_engine

        trace_engine(engine.sync_engine)
    return engine


def traced(
    name: str, *, resource: str
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Trace an async function as span `name`, tagged with its pipeline_id/run_id keyword args."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if _datadog is None or _datadog.tracer is None:
                return await fn(*args, **kwargs)
            with _datadog.tracer.trace(name, resource=resource) as span:
                for key in ("pipeline_id", "run_id"):
                    if key in kwargs:
                        span.set_tag(key, str(kwargs[key]))
                return await fn(*args, **kwargs)

        return wrapper

    return decorate


def trace_labels() -> dict[str, str | int | float | bool]:
    """The active trace as flow-run labels, continued by the flow-run process (telemetry.py)."""
    if _datadog is None or _datadog.tracer is None:
        return {}
    from ddtrace.propagation.http import HTTPPropagator

    span = _datadog.tracer.current_span()
    if span is None:
        return {}
    headers: dict[str, str] = {}
    HTTPPropagator.inject(span, headers)
    # the trace's context only: a client's W3C `baggage` (anything it sent) would be stored in
    # Prefect's database and shown in its UI
    kept = {name: value for name, value in headers.items() if name in _TRACE_HEADERS}
    return {TRACE_LABEL: json.dumps(kept, sort_keys=True)}


_TRACE_HEADERS = frozenset(
    {
        "x-datadog-trace-id",
        "x-datadog-parent-id",
        "x-datadog-sampling-priority",
        "x-datadog-origin",
        "x-datadog-tags",
        "traceparent",
        "tracestate",
    }
)


def tracer() -> "Tracer | None":
    """ddtrace's tracer when tracing is on in this process, else None."""
    return _datadog.tracer if _datadog is not None else None


def flush() -> None:
    """Start sending what is buffered now, on a thread of its own: a flow-run process may exit
    before ddtrace's periodic flush, and a flush to an agent that does not answer takes ~3 s of
    retries, which must not hold up the run. ddtrace's flush at exit sends what is left."""
    if _datadog is not None and _datadog.tracer is not None:
        threading.Thread(target=_datadog.tracer.flush, name="ddtrace-flush", daemon=True).start()


def extract(carrier: object) -> Any:
    """The trace context `trace_labels` put in a flow-run label, or None."""
    from ddtrace.propagation.http import HTTPPropagator

    if not isinstance(carrier, str):
        return None
    try:
        headers = json.loads(carrier)
    except ValueError:
        return None
    if not isinstance(headers, dict):
        return None
    context = HTTPPropagator.extract({str(k): str(v) for k, v in headers.items()})
    return context if context.trace_id else None


def count(metric: str, value: int, **tags: str) -> None:
    if _datadog is not None and _datadog.statsd is not None:
        _datadog.statsd.increment(metric, value, tags=[f"{k}:{v}" for k, v in tags.items()])


def distribution(metric: str, value: float, **tags: str) -> None:
    if _datadog is not None and _datadog.statsd is not None:
        _datadog.statsd.distribution(metric, value, tags=[f"{k}:{v}" for k, v in tags.items()])
