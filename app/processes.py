"""A child process the local stack (app/devstack.py) starts: in a session of its own, so that
stopping it stops everything it started, and only that; and the signals that stop the stack."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

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


def refuse_taken_port(host: str, port: int, what: str, option: str) -> None:
    """A port already taken would look like success: someone else's server answering."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: only a
        try:  # listener refuses it, not a connection of a stopped one still closing
            probe.bind((host, port))
        except OSError:
            raise RuntimeError(
                f"port {port} on {host} is already in use (another {what}, a `make up` still "
                f"running, or `docker compose up`?): stop it, or give the stack another port with "
                f"{option}"
            ) from None


class Ledger:
    """The stack's processes, written down as they start (name, process id, start time) with the
    stack's own: a stack whose own process was killed (SIGKILL, the OOM killer) cannot stop them,
    and the next start found its ports taken by them. It stops what a dead stack left, and only
    that: a process id counts only with the start time it had, and a stack still running (`make
    up` typed twice) keeps its processes: the port check then names it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, processes: list[Process]) -> None:
        if not processes:
            self.path.unlink(missing_ok=True)
            return
        entries = [_entry(p.name, p.popen.pid) for p in processes]
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(
            json.dumps({"stack": _entry("stack", os.getpid()), "processes": entries})
        )
        scratch.replace(self.path)

    def stop_leftovers(self) -> list[str]:
        """Stop the processes a dead stack left running (SIGTERM, SIGKILL after the grace period,
        to each one's group); what was stopped, as 'name (process id)'."""
        try:
            written = json.loads(self.path.read_text())
            stack, entries = written["stack"], written["processes"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        if _alive(stack):
            return []
        left = [e for e in entries if _alive(e)]
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for entry in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(entry["pid"], signum)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while (
                signum == signal.SIGTERM and time.monotonic() < deadline and any(map(_alive, left))
            ):
                time.sleep(0.1)
        self.path.unlink(missing_ok=True)
        return [f"{e['name']} ({e['pid']})" for e in left]


def _entry(name: str, pid: int) -> dict[str, object]:
    return {"name": name, "pid": pid, "started": _start_time(pid)}


def _alive(entry: dict[str, Any]) -> bool:
    """Whether the process written down still runs: its id, with the start time it had."""
    return entry["started"] is not None and _start_time(entry["pid"]) == entry["started"]


def _start_time(pid: int) -> int | None:
    """When the process started, in clock ticks after boot (/proc/<pid>/stat's 22nd field); None
    when there is no such process (or it is a zombie, already gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    return None if fields[0] == "Z" else int(fields[19])
