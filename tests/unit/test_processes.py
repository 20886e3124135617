"""The stop signals of `pipeline up` (app/processes.py): the first one stops, the rest wait."""

import subprocess
import sys
import textwrap

from app.config import PROJECT_ROOT

# Two stop signals that arrive together (the terminal closes, then Ctrl-C): the second must not
# interrupt the stop the first one started, even before the stop's `finally` is reached.
TWO_SIGNALS_AT_ONCE = textwrap.dedent(
    """
    import os, signal, time
    from app.processes import on_stop_signal, raise_interrupt

    on_stop_signal(raise_interrupt)
    try:
        try:
            both = {signal.SIGHUP, signal.SIGINT}
            signal.pthread_sigmask(signal.SIG_BLOCK, both)  # held, then delivered together
            os.kill(os.getpid(), signal.SIGHUP)
            os.kill(os.getpid(), signal.SIGINT)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, both)
            time.sleep(5)
            print("no interrupt")
        except KeyboardInterrupt:
            time.sleep(0.2)  # the stop: the pending Ctrl-C would land here
            print("stopped once")
    except KeyboardInterrupt:
        print("the stop was interrupted")
    """
)


def test_a_second_stop_signal_does_not_interrupt_the_stop() -> None:
    done = subprocess.run(
        [sys.executable, "-c", TWO_SIGNALS_AT_ONCE],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped once\n", "")
