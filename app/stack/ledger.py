"""What a local stack (commands.py) writes down about itself as it starts its processes, and
what the next `make up`, `make doctor` and `make down` of the same state directory read there:
which stack runs, on which ports, and what a killed one left running."""

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.stack.processes import STOP_GRACE_SECONDS, Process, in_stop_order

LEDGER_GLOB = "processes-*.json"


@dataclass(frozen=True)
class Written:
    """A ledger as read: the stack's own process, what it says of itself, its processes."""

    stack: dict[str, Any]
    processes: list[dict[str, Any]]
    about: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return _alive(self.stack)

    @property
    def left_behind(self) -> list[dict[str, Any]]:
        """The processes still running of a stack that was killed (none while it runs)."""
        return [] if self.running else [e for e in self.processes if _alive(e)]

    def port(self, name: str) -> int | None:
        """The stack's port `name` ('api', 'prefect'), as it wrote it down."""
        value = self.about.get(f"{name}_port")
        return int(value) if value is not None else None


class Ledger:
    """The stack's processes, written down as they start (name, process id, start time) with the
    stack's own: a stack whose own process was killed (SIGKILL, the OOM killer) cannot stop them,
    and the next start found its ports taken by them. It stops what a dead stack left, and only
    that: a process id counts only with the start time it had, and a stack still running keeps
    its processes (the next start refuses to share its state, `make down` asks it to stop)."""

    def __init__(self, path: Path, about: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.about = dict(about or {})

    @classmethod
    def all_in(cls, log_dir: Path) -> list["Ledger"]:
        """Every stack's ledger in `log_dir`: one per API port."""
        return [cls(path) for path in sorted(log_dir.glob(LEDGER_GLOB))]

    def write(self, processes: list[Process]) -> None:
        if not processes:
            self.path.unlink(missing_ok=True)
            return
        written = {
            "stack": _entry("stack", os.getpid()),
            "about": self.about,
            "processes": [_entry(p.name, p.popen.pid) for p in processes],
        }
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(written))
        scratch.replace(self.path)

    def read(self) -> Written | None:
        try:
            written = json.loads(self.path.read_text())
            return Written(written["stack"], written["processes"], written.get("about", {}))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def running(self) -> Written | None:
        """The ledger, when the stack that wrote it still runs."""
        written = self.read()
        return written if written is not None and written.running else None

    def stop_leftovers(self) -> list[str]:
        """Stop the processes a dead stack left running, one at a time in the order its own stop
        takes (workers first: a run in flight is told Crashed while its server still answers),
        each by SIGTERM, SIGKILL after the grace period, to its group; what was stopped, as
        'name (process id)', in that order."""
        written = self.read()
        if written is None or written.running:
            return []
        left = in_stop_order(written.left_behind, lambda e: e["name"])
        for entry in left:
            _stop(entry)
        self.path.unlink(missing_ok=True)
        return [f"{e['name']} ({e['pid']})" for e in left]

    def stop_stack(self, written: Written) -> None:
        """`make down` of a stack that runs: the stop its Ctrl-C makes (SIGTERM to its own
        process, which stops its processes in order); SIGKILL once that took longer than each of
        them could, and then stop_leftovers() stops whatever it had not."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(written.stack["pid"], signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS * (len(written.processes) + 1)
        while written.running and time.monotonic() < deadline:
            time.sleep(0.1)
        if written.running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(written.stack["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 5  # delivered as the process is next scheduled
            while written.running and time.monotonic() < deadline:
                time.sleep(0.05)


def _stop(entry: dict[str, Any]) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(entry["pid"], signum)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while signum == signal.SIGTERM and time.monotonic() < deadline and _alive(entry):
            time.sleep(0.1)


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
