"""The stop signals of `pipeline up` (app/processes.py): the first one stops, the rest wait."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.devstack import Stack
from app.processes import Process

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


def test_a_stack_stops_its_workers_before_a_server_restarted_after_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The e2e suite restarts Prefect's server: stopped first as the newest process, it left the
    workers 10 s each trying to tell it that they stop."""
    stopped: list[str] = []
    stop = Process.stop

    def recorded(process: Process) -> None:
        stopped.append(process.name)
        stop(process)

    monkeypatch.setattr(Process, "stop", recorded)
    names = ["prefect-server", "api", "worker-1", "worker-2", "prefect-server"]
    stack = Stack(env={}, log_dir=tmp_path)
    for name in names:
        popen = subprocess.Popen(["sleep", "60"], start_new_session=True)
        stack.processes.append(Process(name, popen, (tmp_path / f"{name}.log").open("ab")))
    stack.stop()
    assert stopped == ["worker-2", "worker-1", "prefect-server", "api", "prefect-server"]
    assert stack.processes == []
