"""A child process the local stack (commands.py) starts: in a session of its own, so that
stopping it stops everything it started, and only that; and the signals that stop the stack."""

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import IO, TypeVar

STOP_GRACE_SECONDS = 10.0  # `prefect worker start` may ignore SIGTERM: SIGKILL after this
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, a stop, terminal closed

SignalHandler = Callable[[int, FrameType | None], None]
T = TypeVar("T")


def in_stop_order(items: Sequence[T], name: Callable[[T], str]) -> list[T]:
    """A stack's processes in the order they stop: its workers first, then the others, newest
    first each. A worker stops its runs through the API and the Prefect server, which must still
    answer; a worker stopped after a Prefect server restarted (so newer) once spent its whole 10 s
    grace trying to tell the stopped server that it stops."""
    newest_first = list(reversed(items))
    workers = [item for item in newest_first if name(item).startswith("worker-")]
    return workers + [item for item in newest_first if item not in workers]


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


@dataclass(frozen=True)
class Port:
    """A port the stack listens on, and how each way of starting it takes another one."""

    number: int
    what: str  # what listens there
    variable: str  # `make up`'s variable


def refuse_taken_ports(
    host: str, ports: list[Port], restart: Callable[[Mapping[str, int]], str]
) -> None:
    """A port already taken would look like success: someone else's server answering. All the
    ports taken are named at once, with the command that starts the stack on others: `restart`
    gives it, the user's other settings kept, for the new ports by make's variable."""
    taken = [port for port in ports if _taken(host, port.number)]
    if not taken:
        return
    one = len(taken) == 1
    where = (
        f"port {taken[0].number} on {host} is"
        if one
        else f"ports {' and '.join(f'{p.number} ({p.what})' for p in taken)} on {host} are"
    )
    other = {p.variable: p.number + 1 if p.number < 65535 else p.number - 1 for p in taken}
    raise RuntimeError(
        f"{where} already in use (another {' and '.join(p.what for p in taken)}, a `make up` "
        "of another checkout or state directory, or `docker compose up`?): "
        f"stop {'it' if one else 'them'}, or give the stack {'another port' if one else 'other ports'}: "
        f"{restart(other)}"
    )


def _taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: only a
        try:  # listener refuses it, not a connection of a stopped one still closing
            probe.bind((host, port))
        except OSError:
            return True
    return False
