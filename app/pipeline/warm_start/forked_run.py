"""A flow run forked from the zygote (zygote.py): it becomes the launcher's process in
all but pid — its stdio, environment, working directory, argv and PYTHONPATH — and runs Prefect's
own engine entry point, as `python -m prefect.engine` would."""

import contextlib
import io
import logging
import os
import sys
import threading
from signal import SIGKILL

import rich.console

from app.pipeline import engine_run

ASYNCIO_SHUTDOWN_MESSAGE = "unhandled exception during asyncio.run() shutdown"


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
    _quiet_when_output_is_gone()
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
    _first_stop_signal_only()
    _quiet_stop_at_loop_shutdown()
    return engine_run.run_engine()


def _first_stop_signal_only() -> None:
    """The first SIGTERM stops the run (Prefect's handler raises TerminationSignal into it); those
    after it are ignored, so none lands in the stop path the first one started. A run whose worker
    is killed gets two at once: the zygote's, stopping its runs as the worker died, and the
    kernel's as the zygote dies (PR_SET_PDEATHSIG). The second cut the run's write of why it ended
    short — mid-write (its database connection closed), or before it began (out of asyncio's
    teardown, which runs it) — in 4 of 17 runs measured. The first one may have been lost (raised
    into an asyncio callback, which logs it and goes on): the run then kills itself and what it
    started STOP_GRACE_SECONDS later, as the zygote would — a worker's stop waits for it."""
    import prefect.utilities.engine

    from app.pipeline.launcher import STOP_GRACE_SECONDS

    raise_termination = prefect.utilities.engine._prefect_sigterm_handler
    stopping = False

    def _prefect_sigterm_handler(signum: int, *frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            deadline = threading.Timer(STOP_GRACE_SECONDS, _kill_its_group)
            deadline.daemon = True
            deadline.start()
            raise_termination(signum, *frame)

    # Prefect's engine installs the handler by this name (capture_sigterm)
    prefect.utilities.engine._prefect_sigterm_handler = _prefect_sigterm_handler  # type: ignore[assignment]


def _quiet_stop_at_loop_shutdown() -> None:
    """Leave out asyncio's ~70-line traceback of a cancel. Prefect's SIGTERM handler raises
    TerminationSignal while the event loop waits in select(), so it leaves asyncio.run() rather
    than the flow's task; asyncio.run() then cancels that task, which the engine, once it has
    handled the cancel ("Flow run was cancelled."), ends with TerminationSignal too, and asyncio
    logs that as "unhandled exception during asyncio.run() shutdown". A cold run's process does
    the same (Prefect 3.8.8). The engine still logs "Execution of flow run … was terminated." and
    exits as it would. Only that record is left out: any other exception at shutdown is still
    logged. It never reached Prefect's API (no API handler takes asyncio's logger): only the run's
    output, which its worker logs."""
    from prefect.exceptions import TerminationSignal

    def keep(record: logging.LogRecord) -> bool:
        stopped = record.exc_info is not None and isinstance(record.exc_info[1], TerminationSignal)
        return not (stopped and str(record.msg).startswith(ASYNCIO_SHUTDOWN_MESSAGE))

    logging.getLogger("asyncio").addFilter(keep)


def _kill_its_group() -> None:
    """This run and what it started: its group, as a session leader (os.setsid above)."""
    try:
        os.killpg(os.getpid(), SIGKILL)
    except ProcessLookupError:  # not a group's leader: itself alone
        os.kill(os.getpid(), SIGKILL)


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


def _quiet_when_output_is_gone() -> None:
    """Prefect's console log handler (rich) ends the process with SystemExit(1) at its first line
    after the worker reading this run's output has gone. That worker is stopping, and the zygote
    stops the run with SIGTERM: a log line must not end it first, half-way through writing why it
    ended. Its output goes quiet instead, as rich's own handler leaves it."""

    def on_broken_pipe(console: rich.console.Console) -> None:
        console.quiet = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, console.file.fileno())
            os.close(devnull)

    rich.console.Console.on_broken_pipe = on_broken_pipe  # type: ignore[method-assign,assignment]
