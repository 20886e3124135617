"""One `make up` stack per state directory, other ports through make, `make down` and `make doctor`
(app/stack/commands.py, app/stack/topology.py, app/stack/ledger.py), with stand-in stacks whose processes are `sleep`s."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.stack.commands import main
from app.stack.topology import Stack, shown_path
from tests.support.postgres import free_port
from tests.support.procs import alive

# A running stack of the state directory argv[1] (API port 8000, Prefect 4200, nothing listening):
# its processes are sleeps; a stop signal stops them as `make up` does.
LIVE_STACK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from app.stack.topology import Stack
    from app.stack.processes import ignore_stop_signals, on_stop_signal, raise_interrupt

    stack = Stack(env={}, state_dir=Path(sys.argv[1]), log_dir=Path(sys.argv[1]))
    on_stop_signal(raise_interrupt)
    try:
        for name in ("prefect-server", "api", "worker-1"):
            stack._spawn(name, ["sleep", "600"])
        print(" ".join(str(p.popen.pid) for p in stack.processes), flush=True)
        time.sleep(600)
    except KeyboardInterrupt:
        ignore_stop_signals()
        stack.stop()
        print("stopped", flush=True)
    """
)

# A stack on API port 8001 that starts a server-like process (whose child ignores SIGTERM) and is
# then killed with SIGKILL: it cannot stop what it started.
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
    stack = Stack(env={}, state_dir=Path(sys.argv[1]), log_dir=Path(sys.argv[1]), api_port=8001)
    process = stack._spawn("prefect-server", [sys.executable, "-c", server])
    print(process.popen.pid, flush=True)
    time.sleep(600)
    """
)


class Spawned(Exception):
    """A stack went on to start its processes."""


@pytest.fixture
def no_spawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack under test starts nothing: what it does before that is what is tested."""

    def spawn(_stack: Stack, name: str, _argv: list[str]) -> None:
        raise Spawned(name)

    monkeypatch.setattr(Stack, "_spawn", spawn)


def _group(pgid: int) -> list[int]:
    """The processes in group `pgid` that are not zombies."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def _until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A stack running with its ledger in tmp_path; stopped (SIGKILL to every group) after."""
    owner = subprocess.Popen(
        [sys.executable, "-c", LIVE_STACK, str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    pids = [int(pid) for pid in owner.stdout.readline().split()]
    try:
        yield owner, pids
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
        for pid in pids:  # each in a session (and group) of its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def killed_stack(tmp_path: Path) -> Iterator[int]:
    """What a stack on API port 8001 killed outright left running: its server's process id."""
    owner = subprocess.Popen(
        [sys.executable, "-c", KILLED_STACK, str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    server = int(owner.stdout.readline())
    owner.stdout.close()
    _until(lambda: len(_group(server)) == 2, 10)  # the server's own child
    owner.kill()
    owner.wait()
    assert len(_group(server)) == 2  # nothing stopped them
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server, signal.SIGKILL)


def test_a_second_stack_of_the_same_state_is_refused(
    tmp_path: Path, live_stack: tuple[subprocess.Popen[str], list[int]], no_spawn: None
) -> None:
    """Two stacks shared var/pipelines.db, var/prefect (two Prefect servers, one SQLite file),
    var/data and the logs: both stacks' workers submitted the same flow run. `make up` typed twice
    (the same ports here; other ports alike) names the running one and the two ways out."""
    owner, pids = live_stack
    with pytest.raises(RuntimeError) as refused:
        Stack(env={}, state_dir=tmp_path, log_dir=tmp_path).start()
    assert str(refused.value) == (
        f"a stack of this state directory runs already ({tmp_path}/processes-8000.json: process "
        f"{owner.pid}, API on port 8000, Prefect server on port 4200); a second one would share "
        "its database, Prefect server and run files: stop it first (Ctrl-C where it runs, or "
        f"`make down STATE_DIR={tmp_path}`), or give this one a state directory of its own and "
        "other ports: `make up STATE_DIR=var-2 API_PORT=8001 PREFECT_PORT=4201`"
    )
    assert all(map(alive, pids))  # the running stack keeps its processes


def test_the_next_start_stops_what_a_killed_stack_on_other_ports_left(
    tmp_path: Path, killed_stack: int, no_spawn: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A killed stack's processes hold the state the next one would use, whatever its ports."""
    with pytest.raises(Spawned):
        Stack(
            env={},
            state_dir=tmp_path,
            log_dir=tmp_path,
            api_port=free_port(),
            prefect_port=free_port(),
        ).start()
    assert capsys.readouterr().out == (
        f"stopped prefect-server ({killed_stack}), left running by a stack that was killed\n"
    )
    _until(lambda: not _group(killed_stack), 5)  # SIGKILL lands as they are next scheduled
    assert _group(killed_stack) == []
    assert list(tmp_path.glob("processes-*.json")) == []


def test_a_taken_port_names_the_way_to_another_from_make_too(
    tmp_path: Path, no_spawn: None
) -> None:
    with socket.socket() as server, socket.socket() as api:
        for taken in (server, api):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        prefect_port, api_port = server.getsockname()[1], api.getsockname()[1]
        stack = Stack(
            env={},
            state_dir=tmp_path,
            log_dir=tmp_path / "log",  # its default: make has no LOG_DIR
            prefect_port=prefect_port,
            api_port=api_port,
        )
        with pytest.raises(RuntimeError) as refused:
            stack.start()
    assert str(refused.value) == (
        f"ports {prefect_port} (Prefect server) and {api_port} (API) on 127.0.0.1 are already in "
        "use (another Prefect server and API, a `make up` of another checkout or state "
        "directory, or `docker compose up`?): stop them, or give the stack other ports: "
        f"`make up STATE_DIR={tmp_path} PREFECT_PORT={prefect_port + 1} "
        f"API_PORT={api_port + 1}` (`pipeline up --state-dir {tmp_path} --prefect-port "
        f"{prefect_port + 1} --api-port {api_port + 1}`)"
    )


def test_down_stops_a_running_stack_as_its_ctrl_c_does(
    tmp_path: Path,
    live_stack: tuple[subprocess.Popen[str], list[int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stack started in the background, or in another terminal: stopped by its own process, in
    order (workers first), which then removes its ledger."""
    owner, pids = live_stack
    main(["down", f"--log-dir={tmp_path}"])
    assert capsys.readouterr().out == f"stopping the stack of process {owner.pid} …\nstopped\n"
    assert owner.stdout is not None
    assert (owner.wait(5), owner.stdout.read()) == (0, "stopped\n")
    assert [pid for pid in pids if alive(pid)] == []
    assert list(tmp_path.glob("processes-*.json")) == []


def test_down_stops_what_a_killed_stack_left(
    tmp_path: Path, killed_stack: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a killed `make up`, starting `make up` again was the only way to stop its processes."""
    main(["down", f"--log-dir={tmp_path}"])
    assert capsys.readouterr().out == (
        f"stopped prefect-server ({killed_stack}), left running by a stack that was killed\n"
        "stopped\n"
    )
    _until(lambda: not _group(killed_stack), 5)
    assert _group(killed_stack) == []


def test_down_with_no_stack_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["down", f"--state-dir={tmp_path}"])
    assert capsys.readouterr().out == f"no stack runs with its ledger in {tmp_path / 'log'}\n"


def test_doctor_checks_the_prefect_server_of_the_stack_running_with_this_state(
    tmp_path: Path,
) -> None:
    """Its ports come from the running stack's ledger (a stack on other ports than 4200), its
    database and files from the state directory; this test's own PREFECT_API_URL is not used."""
    prefect_port = free_port()
    (tmp_path / "log").mkdir()
    stack = Stack(env={}, state_dir=tmp_path, log_dir=tmp_path / "log", prefect_port=prefect_port)
    stack._spawn("api", ["sleep", "60"])  # this process is the running stack
    unset = ("DATABASE_URL", "PIPELINE_DATA_DIR", "PREFECT_HOME")  # the state directory's
    try:
        doctor = subprocess.run(
            [sys.executable, "-m", "app.stack.commands", "doctor", f"--state-dir={tmp_path}"],
            cwd=PROJECT_ROOT,
            env={name: value for name, value in os.environ.items() if name not in unset},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stack.stop()
    lines = doctor.stdout.splitlines()
    assert (doctor.returncode, doctor.stderr) == (1, "")
    assert lines[0] == (
        f"FAIL  database       sqlite+aiosqlite:///{tmp_path / 'pipelines.db'}: file does not exist"
    )
    assert (
        f"{'':<20} fix: start the Prefect server and set PREFECT_API_URL (now "
        f"http://127.0.0.1:{prefect_port}/api) to its address in every process: API, worker and "
        "this one"
    ) in lines


def test_doctor_names_what_a_killed_stack_of_this_state_left_and_how_to_stop_it(
    tmp_path: Path, killed_stack: int
) -> None:
    """Its processes answer on its ports: doctor said "no stack … runs …, yet something answers
    …: another stack, … not this state directory's" and to start this one on other ports."""
    (tmp_path / "log").mkdir()  # where `make up STATE_DIR=…` keeps its ledger
    ledger = (tmp_path / "processes-8001.json").rename(tmp_path / "log" / "processes-8001.json")
    doctor = subprocess.run(
        [sys.executable, "-m", "app.stack.commands", "doctor", f"--state-dir={tmp_path}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    stack_pid = json.loads(ledger.read_text())["stack"]["pid"]
    assert doctor.stdout.splitlines()[0] == (
        f"the stack of STATE_DIR={tmp_path} was killed (its process {stack_pid} is gone) and "
        f"left running prefect-server ({killed_stack}), which the checks below ask; `make down "
        f"STATE_DIR={tmp_path}` stops them, and `make up STATE_DIR={tmp_path} API_PORT=8001` "
        f"(`pipeline up --state-dir {tmp_path} --api-port 8001`) stops them and starts the stack "
        "again. Its checks:"
    )
    assert len(_group(killed_stack)) == 2  # doctor stops nothing


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize(
    ("target", "command"),
    [
        (
            "up",
            "-m app.stack.commands --api-port=8001 --prefect-port=4201 --state-dir='var-2'",
        ),
        (
            "doctor",
            "-m app.stack.commands doctor --api-port=8001 --prefect-port=4201 --state-dir='var-2'",
        ),
    ],
)
def test_make_passes_the_ports_and_state_directory(target: str, command: str) -> None:
    """`make up --prefect-port 4201` was make's own option (an error): variables reach it."""
    # run by `make test`, make is make's child: its flags (-w: "Leaving directory") are not ours
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    dry_run = subprocess.run(
        ["make", "-n", target, "API_PORT=8001", "PREFECT_PORT=4201", "STATE_DIR=var-2"],
        env={name: value for name, value in os.environ.items() if name not in outer},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert dry_run.stdout.splitlines()[-1] == f".venv/bin/python {command}"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_a_state_directory_with_a_space_and_a_quote_is_one_argument(tmp_path: Path) -> None:
    """`make clean STATE_DIR="/tmp/c space"` passed `space` as an argument of its own, and one
    with a quote in it broke the shell's command line (`unexpected EOF`)."""
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DATABASE_URL")
    state = tmp_path / "it's a state"  # its database: the state directory's, not the tests'
    done = subprocess.run(
        ["make", "migrate", f"STATE_DIR={state}"],
        env={name: value for name, value in os.environ.items() if name not in outer},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f".venv/bin/python -m app.stack.migrate --state-dir='{tmp_path}/it'\\''s a state'"
    )
    assert sorted(path.name for path in state.iterdir()) == ["pipelines.db"]


def test_paths_are_shown_relative_to_the_checkout_only_from_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`pipeline up --state-dir` run from another directory was told of `state/log/…` and
    `make down STATE_DIR=state`, paths that were not there from where it ran."""
    ledger = Path(PROJECT_ROOT) / "var" / "log" / "processes-8000.json"
    monkeypatch.chdir(PROJECT_ROOT)
    assert shown_path(ledger) == Path("var/log/processes-8000.json")
    monkeypatch.chdir(tmp_path)
    assert shown_path(ledger) == ledger
