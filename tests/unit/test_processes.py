"""The stop signals of `pipeline up` (app/stack/processes.py): the first one stops, the rest wait."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.stack.ledger import _start_time
from app.stack.processes import Process
from app.stack.topology import Stack

# Two stop signals that arrive together (the terminal closes, then Ctrl-C): the second must not
# interrupt the stop the first one started, even before the stop's `finally` is reached.
TWO_SIGNALS_AT_ONCE = textwrap.dedent(
    """
    import os, signal, time
    from app.stack.processes import on_stop_signal, raise_interrupt

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
    stack = Stack(env={}, state_dir=tmp_path, log_dir=tmp_path)
    for name in names:
        popen = subprocess.Popen(["sleep", "60"], start_new_session=True)
        stack.processes.append(Process(name, popen, (tmp_path / f"{name}.log").open("ab")))
    stack.stop()
    assert stopped == ["worker-2", "worker-1", "prefect-server", "api", "prefect-server"]
    assert stack.processes == []


# A stack's own process that starts a server-like process (with a child of its own, which ignores
# SIGTERM, in its group) and is then killed with SIGKILL: it cannot stop what it started.
KILLED_STACK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from app.stack.topology import Stack

    server = (
        "import signal, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']); "
        "time.sleep(600)"
    )
    stack = Stack(env={}, state_dir=Path(sys.argv[1]), log_dir=Path(sys.argv[1]))
    process = stack._spawn("prefect-server", [sys.executable, "-c", server])
    print(process.popen.pid, flush=True)
    time.sleep(600)
    """
)


def _group(pgid: int) -> list[int]:
    """The processes in group `pgid` that are not zombies."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_the_next_stack_stops_what_a_killed_one_left_running(tmp_path: Path) -> None:
    """`make up` killed with SIGKILL (the OOM killer, a closed terminal's kill) left its server,
    API and workers running, each in a session of its own: the next `make up` found the ports
    taken and nothing said what to stop."""
    owner = subprocess.Popen(
        [sys.executable, "-c", KILLED_STACK, str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    server = int(owner.stdout.readline())
    deadline = time.monotonic() + 10
    while len(_group(server)) < 2 and time.monotonic() < deadline:  # the server's own child
        time.sleep(0.05)
    assert len(_group(server)) == 2
    owner.kill()
    owner.wait()
    assert len(_group(server)) == 2  # nothing stopped them

    stopped = Stack(env={}, state_dir=tmp_path, log_dir=tmp_path).ledger.stop_leftovers()
    assert stopped == [f"prefect-server ({server})"]
    deadline = time.monotonic() + 5  # SIGKILL is delivered as the processes are next scheduled
    while _group(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group(server) == []  # the child that ignored SIGTERM too
    assert not (tmp_path / "processes-8000.json").exists()


# a process that, on SIGTERM, notes its name in the file and then takes 0.3 s to end
ENDS_SLOWLY = (
    "import signal, sys, time\n"
    "def stop(*_):\n"
    "    open(sys.argv[1], 'a').write(sys.argv[2] + ' stopping\\n'); time.sleep(0.3)\n"
    "    open(sys.argv[1], 'a').write(sys.argv[2] + ' ended\\n'); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "print(flush=True); time.sleep(60)\n"
)


def test_a_killed_stacks_leftovers_stop_workers_first_one_at_a_time(tmp_path: Path) -> None:
    """As the stack's own stop: all at once, in the order they started, stopped the Prefect server
    first, and the worker's run in flight stayed Running in Prefect."""
    stops = tmp_path / "stops"
    started = []
    for name in ["prefect-server", "api", "worker-1"]:
        process = subprocess.Popen(
            [sys.executable, "-c", ENDS_SLOWLY, str(stops), name],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None
        process.stdout.readline()  # its handler is in place
        started.append((name, process))
    stack = {"name": "stack", "pid": 2**22 + 1, "started": 1}  # no such process: killed
    entries = [{"name": name, "pid": p.pid, "started": _start_time(p.pid)} for name, p in started]
    (tmp_path / "processes-8000.json").write_text(
        json.dumps({"stack": stack, "processes": entries})
    )

    stopped = Stack(env={}, state_dir=tmp_path, log_dir=tmp_path).ledger.stop_leftovers()

    pids = {name: p.pid for name, p in started}
    assert stopped == [f"{name} ({pids[name]})" for name in ["worker-1", "api", "prefect-server"]]
    assert stops.read_text().splitlines() == [
        "worker-1 stopping",
        "worker-1 ended",
        "api stopping",
        "api ended",
        "prefect-server stopping",
        "prefect-server ended",
    ]
    for _, process in started:
        assert process.wait(5) == 0


def test_a_reused_process_id_is_not_stopped(tmp_path: Path) -> None:
    """Only a process with the start time it was written down with: after a reboot, or long
    after, the same id may be anyone's."""
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        entry = {"name": "api", "pid": bystander.pid, "started": 1}
        stack = {"name": "stack", "pid": 2**22 + 1, "started": 1}  # no such process
        written = {"stack": stack, "processes": [entry]}
        (tmp_path / "processes-8000.json").write_text(json.dumps(written))
        assert Stack(env={}, state_dir=tmp_path, log_dir=tmp_path).ledger.stop_leftovers() == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_stack_that_stopped_leaves_no_list(tmp_path: Path) -> None:
    stack = Stack(env={}, state_dir=tmp_path, log_dir=tmp_path)
    stack._spawn("api", ["sleep", "60"])
    written = json.loads((tmp_path / "processes-8000.json").read_text())
    assert [(e["name"], e["pid"]) for e in written["processes"]] == [
        ("api", stack.processes[0].popen.pid)
    ]
    assert (written["stack"]["name"], written["stack"]["pid"]) == ("stack", os.getpid())
    # `make up` typed again beside it: a stack still running keeps its processes
    assert Stack(env={}, state_dir=tmp_path, log_dir=tmp_path).ledger.stop_leftovers() == []
    assert stack.processes[0].popen.poll() is None
    stack.stop()
    assert not (tmp_path / "processes-8000.json").exists()
