"""A worker's warm start: imports Prefect's engine and the pipeline once, then forks a flow run.

A flow-run process spends ~3 s importing Prefect's engine, Polars and the pipeline before it
does any work. The zygote pays that once: it imports everything, opens a Unix socket and waits.
For each flow run the worker starts `python -m app.pipeline.launcher`, which sends its
environment, working directory and stdio here; the zygote forks, and the child — already warm —
takes the launcher's environment and runs Prefect's own engine entry point (`prefect.engine`).
The zygote reports the child's exit code back to the launcher, kills the child when the launcher
is killed, and exits when the worker that started it is gone.

It runs no threads and no event loop of its own, so forking it is safe.
"""

import contextlib
import ctypes
import io
import json
import os
import runpy
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from app.pipeline.launcher import MAX_MESSAGE, SOCKET_ENV
from app.pipeline.warm import exit_without_teardown, preload, run_import_path

PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 5.0  # a launcher sends its request as soon as it connects


def _die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; elsewhere a
    no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _exit_on_sigterm() -> None:
    """SIGTERM (the worker gone, or a stop) leaves serve() through its cleanup."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


@dataclass
class Zygote:
    """The accept/fork/reap loop: one connection per launcher, one child per connection."""

    path: str
    parent: int = field(default_factory=os.getppid)
    children: dict[int, socket.socket] = field(default_factory=dict)
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)

    def serve(self) -> Callable[[], int] | None:
        """Serve until the parent is gone (returns None); in a forked child, return its job."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(self.path)
        listener.listen(64)
        wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD wakes the loop
        selector = self.selector
        selector.register(listener, selectors.EVENT_READ, "accept")
        selector.register(wakeup_read, selectors.EVENT_READ, "reap")
        print(f"zygote {os.getpid()}: warm, listening on {self.path}", flush=True)
        try:
            while os.getppid() == self.parent:
                for key, _ in selector.select(PARENT_CHECK_SECONDS):
                    if key.data == "accept":
                        job = self._accept(listener)
                        if job is not None:  # the forked child: leave the loop and run
                            selector.close()
                            listener.close()
                            os.close(wakeup_read)
                            os.close(wakeup_write)
                            return job
                    elif key.data == "reap":
                        with contextlib.suppress(BlockingIOError):
                            os.read(wakeup_read, 4096)
                        self._reap()
                    else:  # a launcher hung up before its run ended: it was killed
                        self._hang_up(key.fileobj)  # type: ignore[arg-type]
            return None
        finally:
            if listener.fileno() != -1:  # the zygote itself, not a child that left the loop
                listener.close()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                with contextlib.suppress(OSError):  # the worker's private socket directory
                    os.rmdir(os.path.dirname(self.path))

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
            pid = os.fork()
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
            _die_with_parent()
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
        try:
            os.killpg(pid, signal.SIGKILL)  # the run and what it started, as for a cold run
        except (ProcessLookupError, PermissionError):  # not yet its own group's leader
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def run_flow_run(
    fds: list[int], request: dict[str, object], import_path: list[str] | None = None
) -> int:
    """In the forked child: become the launcher's process in all but pid (its environment, its
    PYTHONPATH on sys.path: `import_path`), then run the engine."""
    # a session of its own, as the launcher has: a signal to the worker's process group (a stop,
    # Ctrl-C) reaches the run only through the worker's cancellation or the launcher
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    # line by line, as the worker reads it: the last lines of a run killed outright are kept
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    env = request["env"]
    assert isinstance(env, dict)
    zygote_logging_env = _logging_environment()
    zygote_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    _warn_if_datadog_differs(zygote_env)
    os.chdir(str(request["cwd"]))
    argv = request["argv"]
    assert isinstance(argv, list)
    sys.argv = [str(arg) for arg in argv]
    if import_path is not None:
        sys.path[:] = import_path
    _refresh_settings(zygote_logging_env)
    sys.modules.pop("prefect.engine", None)  # run as __main__, as `python -m prefect.engine` does
    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


def _warn_if_datadog_differs(zygote_env: dict[str, str]) -> None:
    """Datadog's libraries, preloaded, read DD_* at import: the zygote's values. A run whose own
    differ (a deployment's job variables, say) is told so rather than traced elsewhere silently."""
    if "ddtrace" not in sys.modules:
        return
    differing = sorted(
        k
        for k, v in os.environ.items()
        # empty is unset (docker-compose.yml passes DD_VERSION empty; the zygote filled it in)
        if k.startswith("DD_") and v and zygote_env.get(k) != v
    )
    if differing:
        print(
            f"warning: this run's {', '.join(differing)} differ from its worker's; Datadog's "
            "libraries were loaded with the worker's values (restart the worker to change them)",
            file=sys.stderr,
            flush=True,
        )


def _logging_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("PREFECT_LOGGING_")}


def _refresh_settings(zygote_logging_env: dict[str, str]) -> None:
    """Settings read at import saw the zygote's environment; read them again from the run's.

    Prefect's logging is configured again only if what it is built from changed: the settings
    and the PREFECT_LOGGING_* variables. Doing it regardless renders Prefect's logging template
    from every setting, ~18% of a warm run's CPU, to arrive at the configuration it already has.
    """
    import prefect.context
    import prefect.logging.configuration

    from app.config import get_settings

    zygote_settings = prefect.context.get_settings_context().settings
    prefect.context.refresh_global_settings_context()
    changed = prefect.context.get_settings_context().settings != zygote_settings
    if changed or _logging_environment() != zygote_logging_env:
        prefect.logging.configuration.setup_logging(incremental=False)
    get_settings.cache_clear()


def main() -> int:
    path = os.environ.get(SOCKET_ENV)
    if not path:
        print(f"zygote: {SOCKET_ENV} is not set", file=sys.stderr)
        return 2
    _exit_on_sigterm()
    _die_with_parent(signal.SIGTERM)  # not SIGKILL: the socket and its directory are removed
    preload()
    job = Zygote(path).serve()
    if job is None:
        return 0
    exit_without_teardown(job())


if __name__ == "__main__":
    sys.exit(main())
