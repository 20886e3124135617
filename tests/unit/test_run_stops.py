"""How a stop reaches a flow run, and what it is taken for (app/pipeline/stops.py); and the broken
pipe that once ended a run whose worker was stopping before the zygote's SIGTERM could stop it
(app/pipeline/warm_start/forked_run.py), checked in a subprocess (the change is process-wide)."""

import asyncio
import subprocess
import sys
import textwrap

from prefect.exceptions import TerminationSignal

from app.config import PROJECT_ROOT
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL, stop_reason


def test_a_signal_a_cancelled_await_or_an_exit_raised_into_the_flow_is_a_stop() -> None:
    """A stop of a cold run by its worker once failed it as `SystemExit: 1` (rich's broken pipe,
    below): a failure of the pipeline, not a stop."""
    raised = [
        TerminationSignal(signal=15),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
        SystemExit(1),
        ValueError("bad input"),
        RuntimeError("stage failed"),
    ]
    assert [stop_reason(exc) for exc in raised] == [STOPPED_WITHOUT_CANCEL] * 4 + [None, None]


def _run_script(
    script: str, *, check: bool = False, start_new_session: bool = False
) -> subprocess.CompletedProcess[str]:
    """`script` in a fresh interpreter (its changes are process-wide), its output captured."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
        start_new_session=start_new_session,
    )


BROKEN_PIPE = textwrap.dedent(
    """
    import os, sys
    import rich.console
    from app.pipeline.warm_start.forked_run import _quiet_when_output_is_gone

    def log_line_to_a_pipe_nobody_reads():
        read, write = os.pipe()
        os.close(read)  # the worker that read this run's output is gone
        console = rich.console.Console(file=os.fdopen(write, "w"))
        try:
            console.print("a log line")
        except SystemExit as exc:
            return f"SystemExit({exc.code})"
        return f"quiet={console.quiet}"

    before = log_line_to_a_pipe_nobody_reads()
    _quiet_when_output_is_gone()
    print(before, log_line_to_a_pipe_nobody_reads(), file=sys.stderr)  # rich nulled stdout
    """
)


def test_a_forked_runs_log_line_to_a_gone_worker_goes_quiet_instead_of_exiting() -> None:
    result = _run_script(BROKEN_PIPE, check=True)
    assert result.stderr == "SystemExit(1) quiet=True\n"


def test_the_metrics_tell_a_stop_as_the_run_does() -> None:
    """A stop by SIGINT or by rich's SystemExit was counted as an error of that type, not a
    stop (telemetry cannot import stops.py: stops imports status, which imports telemetry)."""
    from app.pipeline import stops, telemetry

    assert telemetry.STOPS == stops.STOP_SIGNS


TWO_SIGTERMS = textwrap.dedent(
    """
    import os, signal, sys
    from prefect.exceptions import TerminationSignal
    from prefect.utilities.engine import capture_sigterm
    from app.pipeline.warm_start.forked_run import _first_stop_signal_only

    _first_stop_signal_only()
    with capture_sigterm():  # as Prefect's engine runs a flow
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the zygote's, stopping its runs
            signal.pause()
        except TerminationSignal:
            os.kill(os.getpid(), signal.SIGTERM)  # the kernel's, as the zygote dies
            written = sum(range(100_000))  # the stop path: its row's write
            print("the stop path finished", file=sys.stderr, flush=True)
            raise
    """
)


def test_a_second_sigterm_does_not_cut_the_stop_path_short() -> None:
    """A run whose worker was killed got SIGTERM from its zygote and again from the kernel as the
    zygote died: the second raised TerminationSignal into the write of why the run ended (its
    database connection closed mid-write), and the watchdog failed the run instead, later."""
    result = _run_script(TWO_SIGTERMS)
    # then Prefect's engine ends the process by the signal, as it would have ended without it
    assert (result.returncode, result.stderr) == (-15, "the stop path finished\n")


LOST_SIGTERM = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from prefect.utilities.engine import capture_sigterm
    from app.pipeline.warm_start.forked_run import _first_stop_signal_only

    async def main():
        loop = asyncio.get_running_loop()
        # the zygote's SIGTERM lands in a loop callback: asyncio logs its TerminationSignal, goes on
        loop.call_soon(os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # the launcher's, passing on the worker's stop
        await asyncio.sleep(0.5)
        print("still running after two SIGTERMs", file=sys.stderr, flush=True)
        await asyncio.sleep(60)

    _first_stop_signal_only()
    with capture_sigterm():
        asyncio.run(main())
    """
)


def test_a_run_whose_first_sigterm_was_lost_is_killed_after_the_grace() -> None:
    """Ignoring every SIGTERM after the first left a run whose first one asyncio swallowed running
    for good, and the worker's stop (which waits for its launchers) with it."""
    # as a forked run: the leader of its own group
    result = _run_script(LOST_SIGTERM, start_new_session=True)
    assert result.returncode == -9
    assert result.stderr.endswith("still running after two SIGTERMs\n"), result.stderr
