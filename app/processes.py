"""A child process the local stack (app/devstack.py) starts: in a session of its own, so that
stopping it stops everything it started, and only that; and the signals that stop the stack."""

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import IO

STOP_GRACE_SECONDS = 10.0  # `prefect worker start` may ignore SIGTERM: SIGKILL after this
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, a stop, terminal closed

SignalHandler = Callable[[int, FrameType | None], None]


def on_stop_signal(handler: SignalHandler) -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def ignore_stop_signals() -> None:
    # a handler that does nothing rather than SIG_IGN: a signal already pending when SIG_IGN
    # goes in makes Python print "Signal 2 ignored due to race condition" on stderr
    on_stop_signal(_ignore)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    pass


def raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    """The first stop signal starts the stop as a KeyboardInterrupt; the ones after it are
    ignored from that moment on, so a second Ctrl-C cannot cut the stop short, even one that
    arrives before the stop's own `finally` is reached."""
    ignore_stop_signals()
    raise KeyboardInterrupt


@dataclass
class Process:
    """One child process the stack started, in a session of its own so its children stop with it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; only this process's group is signalled."""
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait()
        self._signal(signal.SIGKILL)  # anything the process left behind in its group
        self.log.close()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)
