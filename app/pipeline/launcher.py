"""The command a worker runs for each flow run: hands the run to the worker's warm zygote.

The deployment's job variable `command` is `python -m app.pipeline.launcher`. This process stays
what Prefect's worker watches (its pid, output and exit code) while a child forked by the zygote
(warm_start/zygote.py) — with Prefect's engine and the pipeline's modules already imported —
runs the flow. Without a zygote (PIPELINE_ZYGOTE_SOCKET unset or not answering) it becomes
Prefect's own engine entry point (engine_run.py: `python -m prefect.engine` and the end of a run
cancelled as it starts), so a run never depends on the warm path.

Kept to the standard library on purpose: it starts in a few milliseconds.
"""

import contextlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from typing import NoReturn

SOCKET_ENV = "PIPELINE_ZYGOTE_SOCKET"
MAX_MESSAGE = 1 << 20
PID_TIMEOUT_SECONDS = 30.0
# A run the zygote stops (its launcher killed, its worker stopping) gets SIGTERM, then SIGKILL
# this much later if it has not ended. Its rows and Crashed state took 0.1-0.3 s; a stage's busy
# thread keeps the process on until that thread's work ends, which the SIGKILL cuts short.
STOP_GRACE_SECONDS = 5.0


def _cold_start(reason: str) -> NoReturn:
    print(f"warm start unavailable ({reason}); starting the flow run cold", file=sys.stderr)
    os.execv(sys.executable, [sys.executable, "-m", "app.pipeline.engine_run", *sys.argv[1:]])


def _forward(child: int) -> None:
    """Signals to this process go to the run's whole process group, as Prefect's worker sends
    them to a cold run's (the child leads a session of its own): processes the run started too."""

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(child, signum)
        except (ProcessLookupError, PermissionError):  # not yet its own group's leader
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)


def _die_as(signum: int) -> NoReturn:
    """End as the run's process ended, by its signal: the worker reads -9 as a kill, not 137 as
    an out-of-memory exit."""
    with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(128 + signum)  # a signal that does not end a process by default


def _not_private(path: str) -> str | None:
    """Why the socket at `path` may not be given the run's environment (its database URL, API
    keys), or None: it must be in this user's own directory that no one else may enter, or
    another local user could have made the directory, and the socket in it, after the zygote
    removed its own."""
    directory = os.path.dirname(path) or "."
    try:
        found = os.lstat(directory)
    except OSError as exc:
        return f"no zygote at {path}: {exc}"
    if (
        not stat.S_ISDIR(found.st_mode)
        or found.st_uid != os.getuid()
        or stat.S_IMODE(found.st_mode) & 0o077
    ):
        return f"{directory} is not this user's own private directory (mode 0700)"
    return None


def _peer_uid(conn: socket.socket) -> int:
    """The user the process at the other end of the socket runs as."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def main() -> int:
    # a session of its own, as Prefect gives a flow run: a signal to this group reaches only the run
    if os.getsid(0) != os.getpid():
        os.setsid()
    path = os.environ.get(SOCKET_ENV)
    if not path:
        _cold_start(f"{SOCKET_ENV} is not set")
    if problem := _not_private(path):
        _cold_start(problem)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(str(path))
    except OSError as exc:
        _cold_start(f"no zygote at {path}: {exc}")
    if (uid := _peer_uid(conn)) != os.getuid():
        _cold_start(f"the zygote at {path} runs as user {uid}, not as this one")
    request = {"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv}
    try:
        socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    except OSError as exc:  # an environment too large for one message, say
        _cold_start(f"the zygote at {path} did not take the request: {exc}")
    child = 0
    conn.settimeout(PID_TIMEOUT_SECONDS)  # a zygote that took the request and never forks
    while True:
        try:
            message = conn.recv(MAX_MESSAGE)
        except InterruptedError:
            continue
        except TimeoutError:
            _cold_start(f"the zygote at {path} did not start the run in {PID_TIMEOUT_SECONDS:g} s")
        except ConnectionResetError:
            message = b""
        if not message and not child:  # it could not fork (a process limit), or it stopped
            _cold_start(f"the zygote at {path} closed the connection before starting the run")
        if not message:
            print("the zygote went away before the flow run finished", file=sys.stderr)
            return 1
        kind, _, value = message.decode().partition(" ")
        if kind == "cold" and not child:  # the zygote cannot run it as a cold start would
            _cold_start(f"the zygote cannot start this run as a cold start would: {value}")
        if kind == "pid":
            child = int(value)
            conn.settimeout(None)  # the run takes as long as it takes
            _forward(child)
        elif kind == "exit":
            return int(value)
        elif kind == "signal":
            _die_as(int(value))


if __name__ == "__main__":
    sys.exit(main())
