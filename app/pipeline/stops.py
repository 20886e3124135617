"""Why a flow run is being stopped, if it is: a cancel from Prefect, or a stop without one."""

import asyncio

from prefect._internal.control_listener import get_intent
from prefect.exceptions import TerminationSignal

from app.pipeline.status import CANCELLED_IN_PREFECT

STOPPED_WITHOUT_CANCEL = (
    "stopped: the flow-run process got a stop signal without a cancel from Prefect (a worker or "
    "host shutting down, or a kill); trigger the pipeline again"
)
# How a stop reaches the flow, in whatever frame runs: Prefect's SIGTERM handler raises
# TerminationSignal, or an await is cancelled; SIGINT raises KeyboardInterrupt; and rich (Prefect's
# console log handler) raises SystemExit(1) at the first line after the worker reading the run's
# output has gone — the worker stopping, which ends a cold run so.
STOP_SIGNS = (asyncio.CancelledError, TerminationSignal, KeyboardInterrupt, SystemExit)


def stop_reason(exc: BaseException) -> str | None:
    """Why the flow-run process is being stopped, if it is: a cancel, when Prefect's runner said
    so before its SIGTERM (as Prefect's own engine decides Cancelled or Crashed), else a stop
    with no cancel behind it."""
    if not isinstance(exc, STOP_SIGNS):
        return None
    return CANCELLED_IN_PREFECT if get_intent() == "cancel" else STOPPED_WITHOUT_CANCEL
