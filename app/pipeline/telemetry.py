"""What a pipeline run reports to Datadog (through app/observability/, inert without an agent):
span `pipeline.flow` continuing the trigger's trace, a `pipeline.stage` span per stage attempt,
and the metrics pipeline.runs, pipeline.duration, pipeline.stage.duration,
pipeline.records_processed and pipeline.errors.

A run counts once in pipeline.runs, by how it ended, where its row moved to that final status
(update_pipeline_status: the flow, the API's cancel or the watchdog, whichever wrote first); an
attempt Prefect runs again (PIPELINE_FLOW_RETRIES) is not an end. A flow run with a run id in its
tags has a row that counts it, even when its claim fails (the database locked: the watchdog ends
the row); one with none that got no row (a pipeline that does not exist, a claim that failed)
counts as a failed run here. A cancel is no error: it counts as cancelled, never in
pipeline.errors. A stop without a cancel is one, as its rows say (app/pipeline/stops.py): its
stage's status is failed, its spans carry the rows' error, and it is counted once, by the stage
that was running (by the flow between stages).
"""

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prefect.exceptions import TerminationSignal

from app import observability
from app.observability import TRACE_LABEL

if TYPE_CHECKING:
    from ddtrace.trace import Span

# how a stop reaches the flow (as app/pipeline/stops.py tells them, which imports status.py, and
# that this module): Prefect's SIGTERM handler raises TerminationSignal in whatever frame runs, or
# an await is cancelled; SIGINT raises KeyboardInterrupt; rich raises SystemExit(1) at the first
# log line once the worker reading a cold run's output has gone
STOPS = (asyncio.CancelledError, TerminationSignal, KeyboardInterrupt, SystemExit)
STOPPED = "Stopped"  # the error type of a stop without a cancel, whose rows say "stopped: …"
_last_stage_error: BaseException | None = None  # counted by its stage; the flow must not recount it
_stage_stopped = False  # a stage counted the stop; the flow must not recount it
_first_attempt_started: dict[str, float] = {}  # by flow run: Prefect retries a flow in-process


class RunTracking:
    """What the flow learns while it runs, put on its span."""

    def __init__(self, span: "Span | None" = None) -> None:
        self.span = span
        self.cancelled = False  # ended Cancelled without an exception (cancelled before it began)
        self.retrying = False  # this attempt failed and Prefect runs the flow again
        self.stopped = False  # stopped by a signal with no cancel behind it: a failure
        self.uncounted = False  # refused before it began: whoever ended its run counted it
        self.claimed = False  # it has (or its tags name) a run row, which counts it as it ends

    def run(self, run_id: int) -> None:
        self.claimed = True
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
    """Span `pipeline.flow` of one flow-run attempt; pipeline.runs and pipeline.duration (from the
    first attempt's start) once the run has ended."""
    global _stage_stopped
    if not observability.setup():
        yield RunTracking()
        return
    _stage_stopped = False
    started = _first_attempt_started.setdefault(flow_run_id, time.perf_counter())
    tracer, status = observability.tracer(), "completed"
    span = None
    if tracer is not None:
        parent = observability.extract(labels.get(TRACE_LABEL))
        span = tracer.start_span(
            "pipeline.flow", child_of=parent, resource=flow_name, activate=True
        )
        span.set_tag("pipeline_id", str(pipeline_id))
        span.set_tag("prefect.flow_run_id", flow_run_id)
        observability.tracing.trace_run_lines(flow_run_id, span)  # Prefect's lines after it
    tracking = RunTracking(span)
    try:
        yield tracking
        status = "cancelled" if tracking.cancelled else status
    except STOPS as exc:
        error = stopped_without_cancel(exc, known=tracking.stopped)
        status = "cancelled" if error is None else "failed"
        if error is not None:
            if not _stage_stopped:
                observability.count("pipeline.errors", 1, stage="flow", error_type=STOPPED)
            _flag_stopped(span, exc, error)
        raise
    except BaseException as exc:
        status = "retrying" if tracking.retrying else "failed"
        if exc is not _last_stage_error:
            observability.count("pipeline.errors", 1, stage="flow", error_type=type(exc).__name__)
        if span is not None:
            span.set_exc_info(type(exc), exc, exc.__traceback__)
        raise
    finally:
        if status != "retrying":  # the run has not ended: its last attempt counts it
            del _first_attempt_started[flow_run_id]
            if not (tracking.claimed or tracking.uncounted):
                run_ended(status, seconds=time.perf_counter() - started)
        if span is not None:
            span.set_tag("status", status)
            span.finish()
        observability.flush()


def stopped_without_cancel(exc: BaseException, *, known: bool = False) -> str | None:
    """The error the run's rows get for the stop `exc` when no cancel is behind it (`known` when
    the flow has decided so), as the flow decides it; None for a cancel."""
    from app.pipeline.stops import STOPPED_WITHOUT_CANCEL, stop_reason  # stops → status → here

    return STOPPED_WITHOUT_CANCEL if known or stop_reason(exc) == STOPPED_WITHOUT_CANCEL else None


def _flag_stopped(span: "Span | None", exc: BaseException, error: str) -> None:
    """The span is an error, with the rows' type and message and the stack the stop cut."""
    if span is None:
        return
    span.set_exc_info(type(exc), exc, exc.__traceback__)
    span.error = 1
    span.set_tag("error.type", STOPPED)
    span.set_tag("error.message", error)


def run_ended(status: str, *, seconds: float | None = None) -> None:
    """Count a run that ended (pipeline.runs) and how long it ran (pipeline.duration) if known."""
    observability.count("pipeline.runs", 1, status=status)
    if seconds is not None:
        observability.distribution("pipeline.duration", seconds, status=status)


@contextmanager
def stage(name: str, *, pipeline_id: int, run_id: int, attempt: int) -> Iterator[StageTracking]:
    """Span `pipeline.stage` of one attempt; pipeline.stage.duration, records_processed, errors."""
    global _last_stage_error, _stage_stopped
    if not observability.setup():
        yield StageTracking()
        return
    tracer, started, status = observability.tracer(), time.perf_counter(), "completed"
    span = None
    if tracer is not None:
        span = tracer.trace("pipeline.stage", resource=name)
        for key, value in (("stage", name), ("pipeline_id", pipeline_id), ("run_id", run_id)):
            span.set_tag(key, str(value))
        span.set_metric("attempt", attempt)
    tracking = StageTracking(span)
    try:
        yield tracking
    except STOPS as exc:  # interrupted: by a cancel, or by a stop without one (a failure)
        error = stopped_without_cancel(exc)
        status = "cancelled" if error is None else "failed"
        if error is not None:
            _stage_stopped = True
            observability.count("pipeline.errors", 1, stage=name, error_type=STOPPED)
            _flag_stopped(span, exc, error)
        raise
    except BaseException as exc:
        status, _last_stage_error = "failed", exc
        observability.count("pipeline.errors", 1, stage=name, error_type=type(exc).__name__)
        if span is not None:
            span.set_exc_info(type(exc), exc, exc.__traceback__)
        raise
    finally:
        observability.distribution(
            "pipeline.stage.duration", time.perf_counter() - started, stage=name, status=status
        )
        if tracking.records_out is not None:
            observability.count("pipeline.records_processed", tracking.records_out, stage=name)
        if span is not None:
            span.set_tag("status", status)
            span.finish()
