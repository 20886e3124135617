"""Datadog: one trace from the API request through the flow run to every stage, the pipeline
metrics over DogStatsD, and JSON logs carrying the trace (app/json_logs.py) — the only module
importing ddtrace/datadog.

Off unless an agent is configured (DD_AGENT_HOST set, or DD_TRACE_ENABLED=true): then neither
library is even imported, no log handler changes, and every hook below returns at its first line.
"""

import asyncio
import importlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from app.config import Settings, get_settings
from app.json_logs import use_json_logs

if TYPE_CHECKING:
    from datadog.dogstatsd.base import DogStatsd
    from ddtrace.trace import Span, Tracer
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
_last_stage_error: BaseException | None = None  # counted by its stage; the flow must not recount it


def is_enabled(settings: Settings) -> bool:
    """An agent is configured: metrics and JSON logs on, and tracing unless DD_TRACE_ENABLED=false."""
    return bool(settings.dd_agent_host) or settings.dd_trace_enabled is True


def setup(settings: Settings | None = None) -> bool:
    """Turn Datadog on in this process when an agent is configured (once); True when on."""
    global _datadog, _set_up
    if _set_up:
        return _datadog is not None
    _set_up = True
    settings = settings or get_settings()
    if not is_enabled(settings):
        return False
    _export_unified_tags(settings)
    tracer = _start_tracing(settings) if settings.dd_trace_enabled is not False else None
    _datadog = _Datadog(tracer, _start_metrics(settings))
    use_json_logs(settings)
    return True


def preload() -> bool:
    """Import Datadog's libraries now when an agent is configured, turning nothing on; True if so.

    The zygote (app/pipeline/warm.py) does this so that a run it forks does not spend ~0.75 s
    importing them. Importing starts no thread, and ddtrace restarts its own after a fork. What
    ddtrace reads from the environment at import gets the settings' values first, as in setup().
    """
    settings = get_settings()
    if not is_enabled(settings):
        return False
    _export_unified_tags(settings)
    for module in ("datadog.dogstatsd.base", "ddtrace.trace", "ddtrace.contrib.sqlalchemy"):
        importlib.import_module(module)
    return True


def _export_unified_tags(settings: Settings) -> None:
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
    for name, value in values.items():
        os.environ.setdefault(name, value)


def _start_tracing(settings: Settings) -> "Tracer":
    import ddtrace
    from ddtrace.trace import Span, TraceFilter, tracer

    class DropDetachedClientCalls(TraceFilter):
        """Client calls outside any request or run (Prefect's background log shipping) would
        each be a one-span trace with no context: drop them."""

        def process_trace(self, trace: list[Span]) -> list[Span] | None:
            ids = {span.span_id for span in trace}
            roots = [span for span in trace if span.parent_id not in ids]
            if roots and all(r.parent_id is None and r.span_type in ("http", "sql") for r in roots):
                return None
            return trace

    ddtrace.config.service, ddtrace.config.env = settings.dd_service, settings.dd_env
    ddtrace.config.version = settings.dd_version
    # sqlite3 is left out on purpose: aiosqlite runs it on a thread without the trace context,
    # so its spans would be orphans; the SQLAlchemy integration (traced_engine) covers SQLite.
    ddtrace.patch(fastapi=True, httpx=True, sqlalchemy=True, asyncpg=True, logging=True)
    tracer.configure(trace_processors=[DropDetachedClientCalls()])
    return tracer


def _start_metrics(settings: Settings) -> "DogStatsd":
    from datadog.dogstatsd.base import DogStatsd

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
    """The active trace as flow-run labels, continued by `flow_run` in the flow-run process."""
    if _datadog is None or _datadog.tracer is None:
        return {}
    from ddtrace.propagation.http import HTTPPropagator

    span = _datadog.tracer.current_span()
    if span is None:
        return {}
    headers: dict[str, str] = {}
    HTTPPropagator.inject(span, headers)
    return {TRACE_LABEL: json.dumps(headers, sort_keys=True)}


class RunTracking:
    """What the flow learns while it runs, put on its span."""

    def __init__(self, span: "Span | None" = None) -> None:
        self.span = span
        self.cancelled = False  # ended Cancelled without an exception (cancelled before it began)

    def run(self, run_id: int) -> None:
        if self.span is not None:
            self.span.set_tag("run_id", str(run_id))


class StageTracking:
    """What a stage learns while it runs: the records it produced."""

    def __init__(self, span: "Span | None" = None) -> None:
        self.span = span
        self.records_out: int | None = None

    def records(self, records_out: int) -> None:
        self.records_out = records_out
        if self.span is not None:
            self.span.set_metric("records_out", records_out)


@contextmanager
def flow_run(
    *, flow_name: str, pipeline_id: int, flow_run_id: str, labels: Mapping[str, Any]
) -> Iterator[RunTracking]:
    """Span `pipeline.flow` continuing the trigger's trace; pipeline.runs and pipeline.duration."""
    setup()
    if _datadog is None:
        yield RunTracking()
        return
    tracer, started, status = _datadog.tracer, time.perf_counter(), "completed"
    span = None
    if tracer is not None:
        parent = _extract(labels.get(TRACE_LABEL))
        span = tracer.start_span(
            "pipeline.flow", child_of=parent, resource=flow_name, activate=True
        )
        span.set_tag("pipeline_id", str(pipeline_id))
        span.set_tag("prefect.flow_run_id", flow_run_id)
    try:
        yield (tracking := RunTracking(span))
        status = "cancelled" if tracking.cancelled else status
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed"
        if exc is not _last_stage_error:
            _count("pipeline.errors", 1, stage="flow", error_type=type(exc).__name__)
        if span is not None:
            span.set_exc_info(type(exc), exc, exc.__traceback__)
        raise
    finally:
        _count("pipeline.runs", 1, status=status)
        _distribution("pipeline.duration", time.perf_counter() - started, status=status)
        if span is not None:
            span.set_tag("status", status)
            span.finish()
        flush()


@contextmanager
def stage(name: str, *, pipeline_id: int, run_id: int, attempt: int) -> Iterator[StageTracking]:
    """Span `pipeline.stage` of one attempt; pipeline.stage.duration, records_processed, errors."""
    global _last_stage_error
    if _datadog is None:
        yield StageTracking()
        return
    started, status = time.perf_counter(), "completed"
    span = None
    if _datadog.tracer is not None:
        span = _datadog.tracer.trace("pipeline.stage", resource=name)
        for key, value in (("stage", name), ("pipeline_id", pipeline_id), ("run_id", run_id)):
            span.set_tag(key, str(value))
        span.set_metric("attempt", attempt)
    tracking = StageTracking(span)
    try:
        yield tracking
    except BaseException as exc:
        status, _last_stage_error = "failed", exc
        _count("pipeline.errors", 1, stage=name, error_type=type(exc).__name__)
        if span is not None:
            span.set_exc_info(type(exc), exc, exc.__traceback__)
        raise
    finally:
        _distribution(
            "pipeline.stage.duration", time.perf_counter() - started, stage=name, status=status
        )
        if tracking.records_out is not None:
            _count("pipeline.records_processed", tracking.records_out, stage=name)
        if span is not None:
            span.set_tag("status", status)
            span.finish()


def flush() -> None:
    """Send what is buffered now: a flow-run process may exit before ddtrace's own flush."""
    if _datadog is not None and _datadog.tracer is not None:
        _datadog.tracer.flush()


def _extract(carrier: object) -> Any:
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


def _count(metric: str, value: int, **tags: str) -> None:
    if _datadog is not None and _datadog.statsd is not None:
        _datadog.statsd.increment(metric, value, tags=[f"{k}:{v}" for k, v in tags.items()])


def _distribution(metric: str, value: float, **tags: str) -> None:
    if _datadog is not None and _datadog.statsd is not None:
        _datadog.statsd.distribution(metric, value, tags=[f"{k}:{v}" for k, v in tags.items()])
