"""Where a benchmark's CPU goes: CPU seconds per part of the stack, read from /proc (Linux).

A part is a process and everything under it: its own time, the time of the children it has
reaped, and its live descendants' (a flow run forked by a worker's zygote counts to the worker
until the zygote's log line gives it a name of its own). The machine's busy time beside them
bounds any makespan from below: work that needs N CPU-seconds takes N / cores seconds at best.
"""

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields after the name: state ppid … utime(11) stime(12) cutime(13) cstime(14)
    return int(fields[1]), sum(int(field) for field in fields[11:15]) / TICK


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and all its descendants, alive or reaped."""
    stats = {
        int(entry.name): stat
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None
    }
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo.extend(children.get(pid, ()))
    return total


def machine_busy() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting for I/O) since boot."""
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
    user, nice, system, _, _, irq, softirq = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / TICK


@dataclass
class CpuMeter:
    """CPU seconds per named process tree, and the machine's, between two samples."""

    parts: dict[str, int]

    def sample(self) -> dict[str, float]:
        return {
            **{name: tree_cpu(pid) for name, pid in self.parts.items()},
            "machine": machine_busy(),
        }

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: after[name] - before[name] for name in before}
