"""Temporary directories given to the stack's processes and to each worker, and their removal once
nothing uses them.

Prefect and ddtrace leave files in the temporary directory that nothing removes: each worker's
runner makes `runner_storage/<uuid>` and removes it only on a clean exit, the process worker makes
a `tmp…prefect` working directory per flow run and removes it as the run ends, and every process
that imports ddtrace makes an empty 16-hex-digit file it never removes. A host running a worker
for months gathered thousands of them. So each worker (app/pipeline/worker.py) gives itself and
everything it starts a directory of its own, `pipeline-worker-*`, holding its lock while it lives,
and the next worker to start removes those of workers that are gone; a `make up` stack gives its
processes `<state dir>/tmp` and empties it as it starts. A directory counts as in use while any
process runs in it or was started with TMPDIR in it (every process a worker starts inherits its
TMPDIR; a flow run of a worker killed outright may still be running): such a one is left as it is.
"""

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from app.pipeline.warm_start.zygote_directory import hold, release, sweep_unheld

WORKER_PREFIX = "pipeline-worker-"


def users(path: Path) -> list[int]:
    """The live processes (other than this one) whose working directory or TMPDIR is `path` or
    below it; processes of other users this one may not inspect are not seen."""
    root = os.path.realpath(path)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            places = [os.readlink(entry / "cwd"), _tmpdir(entry / "environ")]
            if any(place is not None and _within(place, root) for place in places):
                found.append(int(entry.name))
    return found


def _tmpdir(environ: Path) -> str | None:
    for assignment in environ.read_bytes().split(b"\0"):
        if assignment.startswith(b"TMPDIR="):
            return os.path.realpath(os.fsdecode(assignment[len(b"TMPDIR=") :]))
    return None


def _within(place: str, root: str) -> bool:
    return place == root or place.startswith(root.rstrip("/") + "/")


def empty(path: Path) -> int | None:
    """Remove everything in `path` (made if missing) unless a process uses it; the number of
    entries removed, or None when it is in use and was left as it is."""
    path.mkdir(parents=True, exist_ok=True)
    if users(path):
        return None
    removed = 0
    for entry in sorted(path.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def share(path: Path) -> tuple[int, int | None]:
    """Hold `path` (made if missing) for a stack as it starts, shared with any other stack using
    it, and empty it first when no other holds it; the descriptor its lock is on, and what
    empty() said (None: left as it is)."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    removed = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        removed = empty(path)
    except BlockingIOError:  # another stack holds it: it runs
        pass
    except BaseException:
        os.close(fd)
        raise
    fcntl.flock(fd, fcntl.LOCK_SH)  # another stack emptying it holds it for a moment only
    return fd, removed


def own_directory(base: str | None = None) -> Path:
    """A new private directory for this worker and what it starts, in `base` (the temporary
    directory), held by this process while it lives."""
    path = Path(tempfile.mkdtemp(prefix=WORKER_PREFIX, dir=base))
    if not hold(path):
        raise RuntimeError(f"{path} is not this user's private directory")
    return path


def use(path: Path) -> None:
    """Make `path` the temporary directory of this process and of every process it starts."""
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)


def remove_own(path: Path) -> None:
    """Remove this worker's directory as it stops, unless a process it started still uses it."""
    if not users(path):
        shutil.rmtree(path, ignore_errors=True)
    release(path)


def sweep(base: str | None = None) -> list[Path]:
    """Remove the `pipeline-worker-*` directories in `base` (the temporary directory) of workers
    that are gone, with everything in them; the directories removed."""
    return sweep_unheld(
        tempfile.gettempdir() if base is None else base, WORKER_PREFIX, _unused_removed
    )


def _unused_removed(fd: int, path: Path, found: os.stat_result) -> bool:
    """Remove `path`, whose worker is gone, unless a process still uses it (a flow run of a
    worker killed outright)."""
    if users(path):
        return False
    shutil.rmtree(path)
    return True
