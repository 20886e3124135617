"""What a worker killed outright leaves in the temporary directory, and the next worker's start:
real workers (`python -m app.pipeline.worker`) sharing one temporary directory, Prefect's API
unreachable (they start, and wait for it); no stack."""

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from tests.e2e.test_warm_start import alive, children, listening


@pytest.fixture
def base() -> Iterator[Path]:
    """The workers' temporary directory: short, for a Unix socket's path, and theirs alone."""
    made = Path(tempfile.mkdtemp(prefix="sweep-", dir="/tmp"))
    yield made
    shutil.rmtree(made)


def _worker(base: Path, *options: str, errors: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.worker", "--pool", "none", *options],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "TMPDIR": str(base),
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        text=True,
        start_new_session=True,
    )


def _zygote_directories(base: Path) -> set[Path]:
    return {path for path in base.iterdir() if path.name.startswith("pipeline-zygote-")}


def _listening_directory(base: Path, known: set[Path]) -> Path:
    """The socket directory, not among `known`, whose zygote listens: within 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for directory in _zygote_directories(base) - known:
            if listening(directory / "zygote.sock"):
                return directory
        time.sleep(0.05)
    raise AssertionError("no zygote listened within 60 s")


def _kill_tree(worker: subprocess.Popen[str]) -> None:
    """SIGKILL to the worker's whole process group: it and its zygote, none of them cleaning up."""
    zygotes = children(worker.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in zygotes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in zygotes)


def _why_left(directory: Path) -> str:
    """What a sweep found in `directory`: its entries, its lock, its socket, the processes with
    a descriptor on it (for a failure's message)."""
    found = [f"entries {os.listdir(directory) if directory.exists() else 'gone'}"]
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            found.append("lock free")
        except OSError as exc:
            found.append(f"lock held ({exc})")
        finally:
            os.close(fd)
    found.append(f"listening {listening(directory / 'zygote.sock')}")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if any(os.readlink(entry).startswith(str(directory)) for entry in fd_dir.iterdir()):
                found.append(
                    f"open in {fd_dir.parent.name}: {(fd_dir.parent / 'cmdline').read_bytes()!r}"
                )
    return "; ".join(found)


def test_a_worker_killed_outright_is_swept_by_the_next_one_and_a_live_one_is_not(
    base: Path,
) -> None:
    """A worker SIGKILLed with its zygote left its `pipeline-zygote-*` directory, socket and all;
    nothing ever removed it (a stress test left six). A second worker's start must take that one
    and never the directory of a worker that is still running."""
    workers = [_worker(base, "--type", "process")]  # it waits for the API, keeping its zygote
    try:
        live_directory = _listening_directory(base, set())
        workers.append(killed := _worker(base, "--type", "process"))
        killed_directory = _listening_directory(base, {live_directory})
        _kill_tree(killed)
        assert os.listdir(killed_directory) == ["zygote.sock"]  # what it leaves behind

        # no --type: it cannot reach the API, and stops on its own
        second = _worker(base, errors=subprocess.PIPE)
        _, errors = second.communicate(timeout=120)
        assert (
            f"removed 1 zygote socket directory left by workers that are gone: {killed_directory}"
            in errors.splitlines()
        ), f"{errors}\n{_why_left(killed_directory)}"
        assert _zygote_directories(base) == {live_directory}  # and the second's own, removed
        assert listening(live_directory / "zygote.sock")
        assert workers[0].poll() is None
    finally:
        for worker in workers:
            if worker.returncode is None:
                _kill_tree(worker)
