"""How the zygote stops a run whose launcher is gone: SIGTERM, as a shutdown stops a process, so
the flow can record why it ended; SIGKILL only if it has not ended after a grace. A real zygote
(from test_warm_start); no stack."""

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from app.config import PROJECT_ROOT
from app.pipeline.launcher import SOCKET_ENV
from tests.e2e.test_warm_start import alive, children, zygote

__all__ = ["zygote"]  # the module's zygote fixture, shared


def _exit_line(process: subprocess.Popen[str], within: float) -> str:
    """The zygote's next line saying that one of its flow-run processes exited."""
    assert process.stdout is not None
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready and re.match(
            r"zygote: flow-run process \d+ exited", line := process.stdout.readline()
        ):
            return line
    raise AssertionError(f"no flow-run process exited within {within} s")


def test_a_run_whose_launcher_left_before_its_pid_gets_sigterm_at_once(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    """The stop came so soon after the fork that the child still had the zygote's SIGTERM
    handler, which swallowed it: the run went on (here until the unreachable API made it exit 1)."""
    request = {"env": {**os.environ, "PREFECT__FLOW_RUN_ID": str(uuid.uuid4())}, "cwd": "/"}
    with open(os.devnull, "rb") as stdin, open(os.devnull, "wb") as out:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(zygote[1])
        message = json.dumps({**request, "argv": ["launcher"]}).encode()
        socket.send_fds(conn, [message], [stdin.fileno(), out.fileno(), out.fileno()])
        conn.close()  # before the zygote has forked: its "pid" meets a closed socket
    line = _exit_line(zygote[0], within=3)  # less than the grace: not the SIGKILL after it
    assert re.fullmatch(r"zygote: flow-run process \d+ exited -15 \(.*\)\n", line), line
    assert zygote[0].poll() is None


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (/proc/<pid>/status, SigCgt)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(line for line in status if line.startswith("SigCgt:")).split()[1]
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


def test_a_zygote_stopped_while_it_imports_removes_its_directory() -> None:
    """Stopped before it listened (its worker stopped in its first seconds), it left its empty
    private directory: 62 of them had piled up in /tmp on this machine."""
    directory = tempfile.mkdtemp(prefix="zygote-test-", dir="/tmp")
    env = {**os.environ, SOCKET_ENV: os.path.join(directory, "zygote.sock")}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.warm_start.zygote"],
        cwd=PROJECT_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not _catches_sigterm(process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # until main() is reached; then it imports Prefect for ~3 s
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0
        assert not os.path.exists(directory)
        # once a traceback: the SystemExit its handler raised came out of pydantic's code as a
        # PydanticSerializationError
        assert errors == f"zygote {process.pid}: stopped before it listened; exiting\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if os.path.isdir(directory):
            os.rmdir(directory)


def test_a_worker_stopped_as_its_zygote_starts_leaves_no_socket_directory() -> None:
    """A stop to the worker's process group (the devstack's) in its first moments: the zygote,
    SIGTERMed before its handler was in place, died of it, and the worker (no handler of its own
    yet either) with it; the empty directory stayed. Here the zygote is held (SIGSTOP) from the
    moment it exists, so the stop always comes that early."""
    base = tempfile.mkdtemp(prefix="worker-test-", dir="/tmp")  # short: a Unix socket's path
    env = {**os.environ, "TMPDIR": base, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.worker", "--pool", "none"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    zygote = None
    try:
        deadline = time.monotonic() + 20
        while not (started := children(worker.pid)) and time.monotonic() < deadline:
            time.sleep(0.001)
        (zygote,) = started
        os.kill(zygote, signal.SIGSTOP)  # milliseconds in: its imports take ~0.2 s
        os.killpg(worker.pid, signal.SIGTERM)
        os.kill(zygote, signal.SIGCONT)
        assert worker.wait(timeout=30) == 0
        deadline = time.monotonic() + 30
        while alive(zygote) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(zygote)
        assert os.listdir(base) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if zygote is not None and alive(zygote):
            os.kill(zygote, signal.SIGKILL)
        shutil.rmtree(base)


PRELOADED_THREADS = (
    "import os, threading\n"
    "from app.pipeline.warm_start.warm import preload\n"
    "preload()\n"
    "names = {open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')}\n"
    "print(threading.active_count(), sorted(names))\n"
)


def test_the_zygote_forks_with_no_python_thread_and_no_polars_pool() -> None:
    """What the zygote's docstring says about fork safety: no Python thread (one would be gone in
    the child, with any lock it held), and only the native threads of OpenBLAS (named after the
    process: `python`, as the main thread is), jemalloc and Polars' out-of-core cleaner; not
    Polars' thread pool (`polars-N`), which a child could not run queries on."""
    result = subprocess.run(
        [sys.executable, "-c", PRELOADED_THREADS],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout == "1 ['jemalloc_bg_thd', 'polars-ooc-clea', 'python']\n"
