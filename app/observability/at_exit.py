"""ddtrace's flush at the process's exit, bounded: what is left goes to an agent that answers, and
is dropped, with a warning, when the agent does not answer then (one GET /info, 1 s at most).

ddtrace 4.16 has no setting for this. Its native exporter sends to an agent with libdatadog's own
timeout, 3 s an attempt, six attempts with 3.1 s of back-off (~21 s for an agent that hangs, ~3 s
for one that is down); DD_TRACE_AGENT_TIMEOUT_SECONDS covers only its GET /info and the agentless
intake. Tracer.SHUTDOWN_TIMEOUT (5 s) bounds one join of the writer's thread, but at exit
`ddtrace.internal._threads` joins every periodic thread with no timeout, and the telemetry
writer's exit hook waits for the exporter's lock, which a send holds throughout its retries.
"""

import atexit
import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from app.observability.agent import PROBE_SECONDS, answers

if TYPE_CHECKING:
    from ddtrace.trace import Tracer

_log = logging.getLogger("app.observability")
_asked = False  # whether the agent was asked at this exit already


def bound_exit(tracer: "Tracer", agent_url: str) -> None:
    """From now on this process's exit waits for the agent only if it answers then. Registered
    after ddtrace's own exit hooks, so it runs before them (atexit runs the last one first); and
    before ddtrace's SIGTERM handler, which flushes too (5 s at most) and then leaves the process
    to the handler it wrapped — uvicorn's, which ends it by the signal, with no exit hooks."""
    atexit.register(_at_exit, tracer, agent_url)
    if threading.current_thread() is not threading.main_thread():
        return
    flush_and_stop = signal.getsignal(signal.SIGTERM)
    if not callable(flush_and_stop):
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        _at_exit(tracer, agent_url)
        flush_and_stop(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _at_exit(tracer: "Tracer", agent_url: str) -> None:
    global _asked
    if _asked:
        return  # a SIGTERM asked, and this is the exit it led to
    _asked = True
    if answers(agent_url):
        return  # ddtrace's own exit hooks flush the rest
    _leave_ddtrace_behind(tracer)
    _log.warning(
        "the Datadog agent at %s did not answer GET /info at exit (%g s at most): the spans "
        "this process had not sent are dropped, not waited for",
        agent_url,
        PROBE_SECONDS,
    )


def _leave_ddtrace_behind(tracer: "Tracer") -> None:
    """Nothing of ddtrace's waits at exit: its exit hooks are unregistered, and its periodic
    threads (the writer's, mid-send for ~21 s) are not joined; they end with the process."""
    from ddtrace.internal import _threads
    from ddtrace.internal import atexit as ddtrace_atexit

    tracer.enabled = False
    tracer.SHUTDOWN_TIMEOUT = 0  # its SIGTERM handler's flush
    for hook in list(ddtrace_atexit._atexit_wrapped):  # the tracer's, telemetry's, the runtime's
        ddtrace_atexit.unregister(hook)
    # `_threads._at_exit` still runs (it tells the threads Python is exiting): it stops and joins
    # the threads of this map, and each thread that ends removes itself from it by its id. So the
    # ids stay, mapped to a thread never started, which that stops and joins at once; removing
    # them made a thread ending meanwhile print `KeyError: <its id>` as the API stopped.
    idle = _threads.PeriodicThread(3600.0, _nothing, name="pipeline-ddtrace-left-behind")
    for ident in list(_threads.periodic_threads):
        _threads.periodic_threads[ident] = idle


def _nothing() -> None:
    pass
