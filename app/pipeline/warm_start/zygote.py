"""A worker's warm start: imports Prefect's engine and the pipeline once, then forks a flow run.

A flow-run process spends ~3 s importing Prefect's engine, Polars and the pipeline before it
does any work. The zygote pays that once: it imports everything, opens a Unix socket and waits.
For each flow run the worker starts `python -m app.pipeline.launcher`, which sends its
environment, working directory and stdio here; the zygote forks, and the child — already warm —
takes the launcher's environment and runs Prefect's own engine entry point (`prefect.engine`).
It reports the child's exit code to the launcher, stops the child if the launcher is killed, and
stops its children and exits when stopped or when its worker is gone. A child is stopped as a
shutdown stops a process: SIGTERM to its group (the flow records why it ended), then SIGKILL if
it has not ended STOP_GRACE_SECONDS later.

It runs no Python threads or event loop; its libraries start idle native threads (OpenBLAS,
Polars' jemalloc and out-of-core threads). A child has only the thread that forked: OpenBLAS and
jemalloc hold their locks across a fork; Polars' pool starts in each child (test_zygote_stop.py).
"""

import contextlib
import ctypes
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.pipeline.launcher import MAX_MESSAGE, SOCKET_ENV, STOP_GRACE_SECONDS
from app.pipeline.warm_start.forked_run import run_flow_run
from app.pipeline.warm_start.warm import (
    exit_at_once,
    exit_without_teardown,
    preload,
    run_import_path,
)

PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 5.0  # a launcher sends its request as soon as it connects


def _die_with_parent(sig: signal.Signals) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; elsewhere a
    no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _stop_with_parent(parent: int) -> None:
    """In a forked child: when the zygote dies, stop as a shutdown stops a run (the kernel's
    SIGTERM), and be killed with what the run started if still running STOP_GRACE_SECONDS later:
    the zygote that would have seen to it is gone."""
    _die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # it died before the kernel was asked: nothing has started yet
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        time.sleep(STOP_GRACE_SECONDS)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _exit_on_sigterm(path: str) -> None:
    """SIGTERM (the worker gone, or a stop) before serve() listens: exit at once, removing the
    socket's directory. Not by raising SystemExit into the import under way: it came out of
    pydantic's code as a PydanticSerializationError, with a traceback. Nothing needs undoing."""

    def stop(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):  # bound by serve() a moment before its own handler
            os.unlink(path)
        with contextlib.suppress(OSError):  # the worker's private socket directory
            os.rmdir(os.path.dirname(path))
        os.write(2, f"zygote {os.getpid()}: stopped before it listened; exiting\n".encode())
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)


def _fork() -> int:
    """os.fork(), SIGTERM held in the child until it has reset its handler: the zygote's, still
    in place just after the fork, would swallow a stop that comes that soon."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    return pid


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """`sig` to a child's process group: the run and what it started, as for a cold run."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):  # not yet its own group's leader
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@dataclass
class Zygote:
    """The accept/fork/reap loop: one connection per launcher, one child per connection."""

    path: str
    parent: int = field(default_factory=os.getppid)
    children: dict[int, socket.socket] = field(default_factory=dict)
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    kill_at: dict[int, float] = field(default_factory=dict)  # children stopping: when to SIGKILL
    stop_asked: bool = False

    def serve(self) -> Callable[[], int] | None:
        """Serve until stopped or the parent is gone, then stop the children and return None; in
        a forked child, return its job."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(self.path)
        listener.listen(64)
        wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD wakes the loop
        signal.signal(signal.SIGTERM, self._ask_to_stop)
        selector = self.selector
        selector.register(listener, selectors.EVENT_READ, "accept")
        selector.register(wakeup_read, selectors.EVENT_READ, "reap")
        print(f"zygote {os.getpid()}: warm, listening on {self.path}", flush=True)
        try:
            while not self.stop_asked and os.getppid() == self.parent:
                for key, _ in selector.select(self._timeout()):
                    if key.data == "accept":
                        job = self._accept(listener)
                        if job is not None:  # the forked child: leave the loop and run
                            selector.close()
                            listener.close()
                            os.close(wakeup_read)
                            os.close(wakeup_write)
                            return job
                    else:
                        self._serve_event(key, wakeup_read)
                self._kill_overdue()
            self._unlisten(listener)  # the next launchers start cold
            for pid in self.children:
                if pid not in self.kill_at:
                    self._stop_child(pid)
            while self.children:
                for key, _ in selector.select(self._timeout()):
                    self._serve_event(key, wakeup_read)
                self._kill_overdue()
            return None
        finally:
            if listener.fileno() != -1:  # the zygote itself, not a child that left the loop
                self._unlisten(listener)

    def _ask_to_stop(self, signum: int, frame: object) -> None:
        self.stop_asked = True  # the wakeup fd wakes the loop

    def _unlisten(self, listener: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(listener)
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):  # the worker's private socket directory
            os.rmdir(os.path.dirname(self.path))

    def _serve_event(self, key: selectors.SelectorKey, wakeup_read: int) -> None:
        if key.data == "reap":
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup_read, 4096)
            self._reap()
        elif key.data != "accept":  # a launcher hung up before its run ended: it was killed
            self._hang_up(key.fileobj)  # type: ignore[arg-type]

    def _timeout(self) -> float:
        """Until the next parent check, or the next child due to be killed."""
        due = min(self.kill_at.values(), default=float("inf")) - time.monotonic()
        return max(0.0, min(PARENT_CHECK_SECONDS, due))

    def _stop_child(self, pid: int) -> None:
        """Stop a child as a shutdown stops a process: SIGTERM now, SIGKILL after the grace."""
        self.kill_at[pid] = time.monotonic() + STOP_GRACE_SECONDS
        _signal_group(pid, signal.SIGTERM)

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for pid, due in list(self.kill_at.items()):
            if due <= now and pid in self.children:  # not reaped: the pid is still this child's
                print(
                    f"zygote: flow-run process {pid} did not stop within "
                    f"{STOP_GRACE_SECONDS:g} s of SIGTERM; killing it",
                    file=sys.stderr,
                    flush=True,
                )
                _signal_group(pid, signal.SIGKILL)
                del self.kill_at[pid]

    def _accept(self, listener: socket.socket) -> Callable[[], int] | None:
        try:
            conn, _ = listener.accept()
        except OSError as exc:  # out of file descriptors, say: the launcher starts cold
            print(f"zygote: cannot accept a launcher: {exc}", file=sys.stderr, flush=True)
            return None
        fds: list[int] = []
        try:
            conn.settimeout(REQUEST_TIMEOUT_SECONDS)  # one silent client must not stall the rest
            message, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
            request = json.loads(message)
            conn.settimeout(None)
            import_path, cold = run_import_path(request["env"], request["cwd"])
            if cold:  # told, so that the run's own output says why
                conn.send(f"cold {cold}".encode())
                raise ValueError(cold)
            zygote = os.getpid()
            pid = _fork()
        except (OSError, ValueError, LookupError, TypeError, ImportError) as exc:  # or no fork
            print(f"zygote: cannot start this run: {exc}", file=sys.stderr, flush=True)
            for fd in fds:  # the launcher's stdio: kept open, its worker would wait on them
                os.close(fd)
            conn.close()  # the launcher hears no pid: it starts the run cold
            return None
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Prefect's engine installs its own
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # see _fork
            _stop_with_parent(zygote)
            for child_conn in self.children.values():
                child_conn.close()
            conn.close()
            return lambda: run_flow_run(fds, request, import_path)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)
        try:
            conn.send(f"pid {pid}".encode())
        except OSError:  # the launcher was killed right after asking: its run goes with it
            self._hang_up(conn)
        return None

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            self.kill_at.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            print(
                f"zygote: flow-run process {pid} exited {code} "
                f"(cpu {usage.ru_utime + usage.ru_stime:.2f} s, max rss {usage.ru_maxrss // 1024} MB)",
                flush=True,
            )
            with contextlib.suppress(OSError):
                conn.send((f"exit {code}" if code >= 0 else f"signal {-code}").encode())
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            conn.close()

    def _hang_up(self, conn: socket.socket) -> None:
        try:
            pid = self.selector.get_key(conn).data
        except (KeyError, ValueError):  # already reaped and closed earlier in this round
            return
        self.selector.unregister(conn)  # launchers never write after their request: this is EOF
        if pid not in self.kill_at:  # killed, or its worker is stopping: stop the run
            self._stop_child(pid)


def main() -> int:
    path = os.environ.get(SOCKET_ENV)
    if not path:
        print(f"zygote: {SOCKET_ENV} is not set", file=sys.stderr)
        return 2
    _exit_on_sigterm(path)
    # the worker starts it with its stop signals held, until this handler is in place
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _die_with_parent(signal.SIGTERM)  # not SIGKILL: the socket and its directory are removed
    preload()
    job = Zygote(path).serve()
    if job is None:  # stopped, its runs stopped with it
        exit_at_once()
    exit_without_teardown(job())


if __name__ == "__main__":
    sys.exit(main())
