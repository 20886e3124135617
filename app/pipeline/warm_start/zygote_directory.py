"""The zygote's private socket directory: held by its worker while the worker lives, and swept by
the next worker to start once the worker that made it is certainly gone.

A worker killed outright together with its zygote (SIGKILL to its whole process tree, an OOM kill)
removes nothing: its `pipeline-zygote-*` directory, with the socket in it, stayed in the temporary
directory for good. The worker holds an exclusive flock on its directory for as long as it lives;
the kernel drops it when the worker dies, however it dies. A directory is swept only when no
process holds that lock, it is this user's own and private (0700), nothing but the socket is in it,
and no process listens on that socket: never another live worker's, which several workers sharing
a machine and its /tmp would otherwise take from each other.
"""

import contextlib
import errno
import fcntl
import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PREFIX = "pipeline-zygote-"
SOCKET_NAME = "zygote.sock"
SOCKET_PATH_MAX = 107  # sun_path's 108 bytes, its terminating NUL included
PROBE_SECONDS = 0.5  # a sweep's connect to a socket that may still have a listener
LOCK_WAIT_SECONDS = 2.0  # a sweeping worker holds a directory's lock for a moment only
_held: dict[Path, int] = {}  # directory → the open descriptor its lock is on


def temporary_base() -> str:
    """Where a worker makes its socket directory: the temporary directory, or /tmp when that
    one's path is too long for a Unix socket (the warm start was off, in silence)."""
    base = tempfile.gettempdir()
    if len(os.path.join(base, f"{PREFIX}12345678", SOCKET_NAME)) > SOCKET_PATH_MAX:
        return "/tmp"
    return base


def own_private(found: os.stat_result) -> bool:
    """A directory of this user's that no one else may enter."""
    return (
        stat.S_ISDIR(found.st_mode)
        and found.st_uid == os.getuid()
        and stat.S_IMODE(found.st_mode) == 0o700
    )


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def hold(path: Path) -> bool:
    """Make `path` (mode 0700) if it is gone and hold its lock for the rest of this process's life;
    False when it is not this user's own private directory. The lock is taken on the directory
    that stands at `path` once it is held: one removed by a sweep meanwhile is made again."""
    kept = _held.get(path)
    with contextlib.suppress(OSError):
        if kept is not None and _same(os.fstat(kept), os.lstat(path)):
            return True
    release(path)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:  # swept between the two: made again
            continue
        except OSError:  # a symlink, say: not ours
            return False
        if not own_private(os.fstat(fd)):
            os.close(fd)
            return False
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a sweep holds it for a moment
            if _same(os.fstat(fd), os.lstat(path)):  # else swept meanwhile: made again
                _held[path] = fd
                return True
        os.close(fd)
        time.sleep(0.01)
    return False


def release(path: Path) -> None:
    """Let go of `path`'s lock (its directory was removed, or is to be made again)."""
    if (fd := _held.pop(path, None)) is not None:
        os.close(fd)


def sweep(base: str | None = None) -> list[Path]:
    """Remove the socket directories in `base` (the temporary base) left by workers that are gone;
    the directories removed."""
    return sweep_unheld(temporary_base() if base is None else base, PREFIX, _remove_dead_socket)


def sweep_unheld(
    base: str, prefix: str, remove: Callable[[int, Path, os.stat_result], bool]
) -> list[Path]:
    """Of the directories `prefix`* in `base`, those that are this user's private ones and whose
    lock no process holds (their worker is gone), removed by `remove(fd, path, found)` when it
    finds them done with; the directories removed."""
    try:
        names = sorted(name for name in os.listdir(base) if name.startswith(prefix))
    except OSError:
        return []
    return [path for name in names if _remove_if_unheld(path := Path(base, name), remove)]


def _remove_if_unheld(path: Path, remove: Callable[[int, Path, os.stat_result], bool]) -> bool:
    try:
        found = os.lstat(path)
        if not own_private(found):
            return False
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # gone already, or a symlink
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by its worker while it lives
        return _same(os.fstat(fd), found) and remove(fd, path, found)
    except OSError:  # its worker holds it, or something changed meanwhile: left as it is
        return False
    finally:
        os.close(fd)


def _remove_dead_socket(fd: int, path: Path, found: os.stat_result) -> bool:
    if not _only_a_dead_socket(fd, path):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET_NAME, dir_fd=fd)
    if not _same(os.lstat(path), found):
        return False
    os.rmdir(path)
    return True


def _only_a_dead_socket(fd: int, path: Path) -> bool:
    """Nothing in the directory but a socket no process listens on (or nothing at all)."""
    entries = os.listdir(fd)
    if not entries:
        return True
    if entries != [SOCKET_NAME] or not stat.S_ISSOCK(
        os.stat(SOCKET_NAME, dir_fd=fd, follow_symlinks=False).st_mode
    ):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
        # a listener whose backlog is full held a blocking connect for good, with the starting
        # worker's stop signals held: such a socket has a listener, and is left
        probe.settimeout(PROBE_SECONDS)
        try:
            probe.connect(str(path / SOCKET_NAME))
        except OSError as exc:  # a timeout, EAGAIN: someone listens
            return exc.errno in (errno.ECONNREFUSED, errno.ENOENT)
    return False  # a zygote outliving its worker for a moment, still listening
