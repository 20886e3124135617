"""The worker's zygote (zygote.py) from the worker's side: its private socket
directory, starting it, replacing it when it dies, stopping it when the worker stops."""

import contextlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.pipeline.launcher import SOCKET_ENV, STOP_GRACE_SECONDS
from app.pipeline.warm_start.zygote_directory import (
    PREFIX,
    hold,
    own_private,
    release,
    temporary_base,
)
from app.pipeline.warm_start.zygote_directory import (
    SOCKET_PATH_MAX as SOCKET_PATH_MAX,  # its callers' name
)

RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 60.0
YOUNG_SECONDS = 30.0  # a zygote that dies sooner than this waits longer before the next
ZYGOTE_STOP_MARGIN_SECONDS = 2.0  # past its runs' grace (STOP_GRACE_SECONDS)
# a zygote that died left its runs to stop themselves: they notice within a second
# (zygote.PARENT_CHECK_SECONDS) and are killed STOP_GRACE_SECONDS later
ORPHANS_GONE_SECONDS = STOP_GRACE_SECONDS + 1.0 + ZYGOTE_STOP_MARGIN_SECONDS


def socket_directory() -> Path:
    """A new private directory for the zygote's socket, held by this worker while it lives (see
    zygote_directory.py): under the temporary directory, or /tmp when that one's
    path is too long for a Unix socket."""
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=temporary_base()))
    hold(path)
    return path


def private_directory(path: Path) -> bool:
    """Whether `path` is this user's own directory that no one else may enter, creating it (mode
    0700) if it is gone, and held by this worker. A zygote removes its directory as it exits; its
    successor must not use one another local user made meanwhile, in which a socket of theirs
    would receive the runs' environments (their database URL and API keys)."""
    return hold(path)


def remove_socket_directory(path: Path) -> None:
    """Remove what a zygote that is gone left of `path`: the socket, then its directory — only
    this user's own private one, and only if nothing else is in it. A zygote stopped before its
    SIGTERM handler was in place removed neither (they piled up in /tmp)."""
    try:
        if not own_private(os.lstat(path.parent)):
            return
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        os.rmdir(path.parent)
    except FileNotFoundError:  # the zygote removed it as it exited
        pass
    except OSError:  # something else is in it: left as it is, and held
        return
    release(path.parent)


def start_zygote(path: Path) -> subprocess.Popen[bytes] | None:
    """The zygote, as this process's child (the worker's): it exits with the thread that started
    it (zygote.py asks the kernel for that). None when its directory is no longer
    private: the runs start cold."""
    if not private_directory(path.parent):  # a zygote that exits removes its directory
        print(
            f"{path.parent} is not this user's private directory any more: no zygote, flow runs "
            "start cold (restart the worker)",
            file=sys.stderr,
            flush=True,
        )
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.warm_start.zygote"],
        stdin=subprocess.DEVNULL,
        env={**os.environ, SOCKET_ENV: str(path)},
    )


@dataclass
class ZygoteKeeper:
    """The worker's current zygote, replaced when it dies, stopped when the worker stops."""

    current: subprocess.Popen[bytes]
    path: Path
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)  # a start against the stop
    died_at: float = float("-inf")  # when a zygote last died without being asked to stop

    def keep(self) -> None:
        """Reap the zygote when it dies and start another: after a crash (an OOM kill, say) only
        the runs in between start cold (the launcher's fallback), not every later one. One that
        exits 0 was asked to stop and is not replaced; one that dies young waits longer each time
        before the next (1 s, doubling, at most a minute).

        It never returns: the kernel's parent-death signal follows the thread that started a
        child, so the zygotes it starts exit when the worker does, not when a thread ends."""
        delay = RESTART_SECONDS
        while True:
            started, zygote = time.monotonic(), self.current
            code = zygote.wait()
            if code == 0 or self.stopping.is_set():
                print(f"zygote {zygote.pid} stopped; not replaced", file=sys.stderr, flush=True)
                threading.Event().wait()  # see above: this thread must outlive its zygotes
            self.died_at = time.monotonic()
            lived = self.died_at - started
            delay = (
                RESTART_SECONDS if lived > YOUNG_SECONDS else min(delay * 2, MAX_RESTART_SECONDS)
            )
            print(
                f"zygote {zygote.pid} exited {code}; starting another in {delay:.0f} s "
                "(flow runs start cold meanwhile)",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(delay)
            with self.lock:
                started_again = None if self.stopping.is_set() else start_zygote(self.path)
                if started_again is not None:
                    self.current = started_again
            if started_again is None:
                threading.Event().wait()  # runs start cold from now on; see above

    def stop(self) -> bool:
        """Stop the zygote and wait while it stops its runs (SIGTERM, SIGKILL after a grace), whose
        launchers Prefect's worker SIGKILLed: they say why they ended before the worker is gone.
        Then remove what it left of its socket directory. True when no process it forked can
        still be running: it exited, and a zygote that died earlier did so long enough ago."""
        with self.lock:
            self.stopping.set()
            zygote = self.current
        if zygote.poll() is None:
            zygote.send_signal(signal.SIGTERM)
        try:
            zygote.wait(STOP_GRACE_SECONDS + ZYGOTE_STOP_MARGIN_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"zygote {zygote.pid} did not stop", file=sys.stderr, flush=True)
            return False
        remove_socket_directory(self.path)
        if zygote.returncode != 0:  # it died on its own (asked, it exits 0), when is not known:
            self.died_at = time.monotonic()  # the keeper may not have seen it (it was stopping)
        return time.monotonic() - self.died_at > ORPHANS_GONE_SECONDS


def keep_zygote(zygote: subprocess.Popen[bytes], path: Path) -> ZygoteKeeper:
    """Keep the worker's zygote, in a thread of its own (ZygoteKeeper.keep)."""
    keeper = ZygoteKeeper(zygote, path)
    threading.Thread(target=keeper.keep, name="zygote-keeper", daemon=True).start()
    return keeper


def wait_until_warm(zygote: subprocess.Popen[bytes], path: Path, within: float) -> None:
    """Poll for runs only once the zygote listens, so the first runs start warm too. A zygote
    that dies or takes too long costs nothing but the warm start: runs then start cold."""
    deadline = time.monotonic() + within
    while not path.exists():
        if zygote.poll() is not None or time.monotonic() > deadline:
            print(f"zygote not ready ({path}); flow runs will start cold", file=sys.stderr)
            return
        time.sleep(0.05)
