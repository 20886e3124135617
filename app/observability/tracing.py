"""ddtrace in this process: started with the trace filters that keep the traces whole and their
resources bounded, kept quiet when the agent hangs, and the trace of a flow run's log lines that
no span covers (Prefect's own, before and after the flow's span).

Imported by app/observability/__init__.py when an agent is configured; ddtrace itself only inside
the functions, when tracing starts.
"""

import contextlib
import sys
from typing import TYPE_CHECKING

from app.config import Settings

if TYPE_CHECKING:
    from ddtrace.trace import Span, Tracer

_run_log_ids: dict[str, tuple[str, str]] = {}  # by flow run: its flow span's trace and span ids


def start(settings: Settings) -> "Tracer":
    """ddtrace's tracer, tagged with the settings and with its integrations patched."""
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

    class BoundedRequestResources(TraceFilter):
        """A request no route takes is `GET 404` (its path made a resource of its own: unbounded
        cardinality; `GET 403` when a middleware refused it before routing), and a HEAD
        answered as its GET (app/api/middleware/head.py) is `HEAD …`, not `GET …`."""

        def process_trace(self, trace: list[Span]) -> list[Span] | None:
            for span in trace:
                if span.name != "fastapi.request":
                    continue
                method = span.get_tag("http.method") or ""
                if span.get_tag("http.route") is None:  # by its status: 404, or a refusal
                    span.resource = f"{method} {span.get_tag('http.status_code') or 404}"
                elif method == "HEAD" and span.resource.startswith("GET "):
                    span.resource = f"HEAD {span.resource.removeprefix('GET ')}"
            return trace

    ddtrace.config.service, ddtrace.config.env = settings.dd_service, settings.dd_env
    ddtrace.config.version = settings.dd_version
    # sqlite3 is left out on purpose: aiosqlite runs it on a thread without the trace context,
    # so its spans would be orphans; the SQLAlchemy integration (traced_engine) covers SQLite.
    ddtrace.patch(fastapi=True, httpx=True, sqlalchemy=True, asyncpg=True, logging=True)
    tracer.configure(trace_processors=[DropDetachedClientCalls(), BoundedRequestResources()])
    return tracer


def quiet() -> None:
    """Stop a ddtrace imported before the agent hung (the zygote preloads it) from waiting for
    it: its instrumentation telemetry and its exporter's runtime would wait 3 s each at exit."""
    if "ddtrace.trace" not in sys.modules:
        return
    from ddtrace.internal.native_runtime import get_native_runtime
    from ddtrace.internal.telemetry import telemetry_writer
    from ddtrace.trace import tracer

    tracer.enabled = False
    telemetry_writer.disable()
    with contextlib.suppress(Exception):  # it times out, leaving the hung request behind
        get_native_runtime().shutdown(timeout_ms=100)


def logs_injection() -> bool:
    """ddtrace puts the trace on log records (DD_LOGS_INJECTION, on by default)."""
    from ddtrace import config

    return bool(config._logs_injection)


def trace_run_lines(flow_run_id: str, span: "Span") -> None:
    """From now on the flow run's lines that no span covers carry its flow span `span`, even
    after it ends (Prefect's "Finished in state …" and the errors it logs)."""
    _run_log_ids[flow_run_id] = _log_ids(span.trace_id, span.span_id)


def run_trace(flow_run_id: str) -> tuple[str, str] | None:
    """The trace and span id for a line of this flow run that no span covers: its flow span's,
    or before that span starts (Prefect's "Beginning flow run …") the trigger's, from the flow
    run's label — kept for the lines after its run context ends, as Prefect's "Finished in
    state Cancelling" of a run cancelled before its flow began (it carried none); None for a
    run started from Prefect whose span has not started yet."""
    if flow_run_id in _run_log_ids:
        return _run_log_ids[flow_run_id]
    from prefect.context import FlowRunContext

    from app.observability import TRACE_LABEL, extract

    run = FlowRunContext.get()
    if run is None or run.flow_run is None or str(run.flow_run.id) != flow_run_id:
        return None
    parent = extract(run.flow_run.labels.get(TRACE_LABEL))
    if parent is None:
        return None
    ids = _run_log_ids[flow_run_id] = _log_ids(parent.trace_id, parent.span_id)
    return ids


def _log_ids(trace_id: int, span_id: int | None) -> tuple[str, str]:
    """The ids as ddtrace's log injection writes them (the 128-bit trace id in hex)."""
    from ddtrace.internal.utils.formats import format_trace_id

    return format_trace_id(trace_id), str(span_id or 0)
