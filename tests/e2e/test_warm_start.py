"""The warm start on its own: a real zygote process and the real launcher command, no stack.

Prefect's engine runs in the forked child exactly as `python -m prefect.engine` would; with the
API unreachable (port 9) it fails in a known way, which is what these tests look for.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.pipeline.launcher import SOCKET_ENV
from tests.support.procs import alive

LAUNCHER = [sys.executable, "-m", "app.pipeline.launcher"]


@contextmanager
def started_zygote(path: str, **env: str) -> Iterator[subprocess.Popen[str]]:
    """A real zygote listening on `path`, with this process's environment (its Prefect API) and
    `env`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.warm_start.zygote"],
        env={**os.environ, **env, SOCKET_ENV: path},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = process.stdout.readline()  # after the imports: ~3 s
    assert ready == f"zygote {process.pid}: warm, listening on {path}\n"
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str]]:
    path = str(tmp_path_factory.mktemp("zygote") / "zygote.sock")
    with started_zygote(path) as process:
        yield process, path


def launch(socket_path: str | None, flow_run_id: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PREFECT__FLOW_RUN_ID": flow_run_id}
    env.pop(SOCKET_ENV, None)
    if socket_path:
        env[SOCKET_ENV] = socket_path
    return subprocess.Popen(
        LAUNCHER, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )  # type: ignore[call-overload]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_the_engine_runs_in_a_forked_child_and_its_exit_code_and_output_come_back(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    started = time.monotonic()
    launcher = launch(zygote[1], "not-a-uuid")
    output, _ = launcher.communicate(timeout=60)
    print(f"warm start to the engine's exit: {time.monotonic() - started:.2f} s")
    assert launcher.returncode == 1
    assert "Invalid flow run id. Received arguments: ['" in output
    assert "warm start unavailable" not in output
    assert zygote[0].poll() is None  # the zygote lives on for the next run


def test_without_a_zygote_the_launcher_is_prefects_own_engine(tmp_path: Path) -> None:
    missing = str(tmp_path / "no.sock")
    output, _ = launch(missing, "not-a-uuid").communicate(timeout=120)
    assert output.startswith(f"warm start unavailable (no zygote at {missing}: ")
    assert "starting the flow run cold" in output
    assert "Invalid flow run id. Received arguments: ['" in output


def test_killing_the_launcher_kills_its_flow_run_process(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    # a well-formed id and an unreachable API: the engine keeps retrying, so it is still running
    launcher = launch(zygote[1], str(uuid.uuid4()))
    deadline = time.monotonic() + 30
    while not (running := children(zygote[0].pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(running) == 1
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    launcher.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while children(zygote[0].pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children(zygote[0].pid) == []
    assert zygote[0].poll() is None


def test_a_launcher_gone_before_it_hears_the_pid_costs_only_its_own_run(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    """Killed between sending its request and reading the pid (a cancel at that moment): the
    zygote kills that one child and serves the next launcher."""
    request = {"env": {**os.environ, "PREFECT__FLOW_RUN_ID": str(uuid.uuid4())}, "cwd": "/"}
    with open(os.devnull, "rb") as stdin, open(os.devnull, "wb") as out:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(zygote[1])
        message = json.dumps({**request, "argv": ["launcher"]}).encode()
        socket.send_fds(conn, [message], [stdin.fileno(), out.fileno(), out.fileno()])
        conn.close()  # before the zygote has forked: its "pid" meets a closed socket
    deadline = time.monotonic() + 10
    while children(zygote[0].pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (zygote[0].poll(), children(zygote[0].pid)) == (None, [])
    launcher = launch(zygote[1], "not-a-uuid")  # the next run is still served warm
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 1
    assert "warm start unavailable" not in output


def test_an_unreadable_request_does_not_keep_the_launchers_output_open(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    """The worker reads a run's output until its end: the zygote must not hold it open."""
    read_end, write_end = os.pipe()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(zygote[1])
    socket.send_fds(conn, [b"{not json"], [write_end, write_end, write_end])
    os.close(write_end)
    assert conn.recv(64) == b""  # refused: the zygote hung up
    conn.close()
    ready, _, _ = select.select([read_end], [], [], 10)
    assert ready and os.read(read_end, 1) == b""  # end of output: no copy of it left open
    os.close(read_end)
    assert zygote[0].poll() is None


def test_sigterm_to_the_launcher_reaches_the_flow_run_process(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    launcher = launch(zygote[1], str(uuid.uuid4()))
    deadline = time.monotonic() + 30
    while not children(zygote[0].pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the engine install its handlers
    launcher.send_signal(signal.SIGTERM)
    output, _ = launcher.communicate(timeout=30)
    assert launcher.returncode != 0, output
    assert children(zygote[0].pid) == []


def test_when_its_worker_dies_the_zygote_exits_and_removes_its_socket(tmp_path: Path) -> None:
    socket_dir = tmp_path / "pipeline-zygote-x"
    socket_dir.mkdir()
    path = socket_dir / "zygote.sock"
    worker = subprocess.Popen(  # stands in for the worker: the zygote's parent, then killed
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "zygote = subprocess.Popen([sys.executable, '-m', 'app.pipeline.warm_start.zygote'])\n"
            "print(zygote.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        env={**os.environ, SOCKET_ENV: str(path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    zygote_pid = int(worker.stdout.readline())
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), "the zygote never listened"

    worker.kill()
    worker.wait()
    worker.stdout.close()
    deadline = time.monotonic() + 10
    while (socket_dir.exists() or alive(zygote_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not socket_dir.exists()
    assert not alive(zygote_pid)


def listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def test_a_killed_zygote_is_replaced_and_a_stopped_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "pipeline-zygote-x" / "zygote.sock"
    worker = subprocess.Popen(  # stands in for the worker: app.pipeline.worker's own functions
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from app.pipeline.warm_start import zygote_keeper as worker\n"
            "path = Path(sys.argv[1])\n"
            "zygote = worker.start_zygote(path)\n"
            "print(zygote.pid, flush=True)\n"
            "worker.keep_zygote(zygote, path)\n"
            "time.sleep(600)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None and worker.stderr is not None
    try:
        first = int(worker.stdout.readline())
        deadline = time.monotonic() + 30
        while not listening(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening(path), "the first zygote never listened"

        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replacements = [pid for pid in children(worker.pid) if pid != first and alive(pid)]
            if replacements and listening(path):
                break
            time.sleep(0.05)
        assert len(replacements) == 1 and listening(path), "no zygote took the dead one's place"
        launcher = launch(str(path), "not-a-uuid")
        output, _ = launcher.communicate(timeout=60)
        assert (launcher.returncode, "warm start unavailable" in output) == (1, False)
        assert "Invalid flow run id. Received arguments: ['" in output

        os.kill(replacements[0], signal.SIGTERM)  # a stop, as when the worker stops: exit 0
        deadline = time.monotonic() + 10
        while alive(replacements[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3)  # longer than a replacement's delay (2 s after a zygote that died young)
        assert [pid for pid in children(worker.pid) if alive(pid)] == []
    finally:
        worker.kill()
        worker.wait()
        errors = worker.stderr.read()
        worker.stdout.close()
        worker.stderr.close()
    messages = [line for line in errors.splitlines() if line.startswith("zygote ")]
    assert messages == [
        f"zygote {first} exited -9; starting another in 2 s (flow runs start cold meanwhile)",
        f"zygote {replacements[0]} stopped; not replaced",
    ]
