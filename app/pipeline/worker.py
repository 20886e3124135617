"""`python -m app.pipeline.worker [prefect worker start options]`: a Prefect worker with a warm start.

Starts the worker's zygote (app/pipeline/zygote.py) and then runs `prefect worker start …` in
this process, with the zygote's socket in its environment, so every flow run it starts through
the launcher forks from a process that has already imported Prefect and the pipeline. Two
per-run costs of Prefect's worker are paid once instead: its clients share one TLS context
(app/pipeline/tls.py) and its settings are rendered into environment variables once
(`remember_settings_environment`) — 0.14 → 0.06 CPU-s per flow run in a 100-run burst. And a
run scheduled on its pool, or one of its runs ending, makes the worker look for runs at once
(`look_promptly`), not at its next poll. Plain `prefect worker start` still works: its runs start
cold and wait for its poll.
"""

import asyncio
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
from typing import Any

from app.pipeline.launcher import SOCKET_ENV, STOP_GRACE_SECONDS
from app.pipeline.tls import share_tls_contexts

ZYGOTE_READY_SECONDS = 60.0
RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 60.0
YOUNG_SECONDS = 30.0  # a zygote that dies sooner than this waits longer before the next
LISTEN_RETRY_SECONDS = 30.0
ZYGOTE_STOP_MARGIN_SECONDS = 2.0  # past its runs' grace (STOP_GRACE_SECONDS)

SOCKET_PATH_MAX = 107  # sun_path's 108 bytes, its terminating NUL included


def socket_directory() -> Path:
    """A new private directory for the zygote's socket: under the temporary directory, or /tmp
    when that one's path is too long for a Unix socket (the warm start was off, in silence)."""
    base = tempfile.gettempdir()
    if len(os.path.join(base, "pipeline-zygote-12345678", "zygote.sock")) > SOCKET_PATH_MAX:
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="pipeline-zygote-", dir=base))


def private_directory(path: Path) -> bool:
    """Whether `path` is this user's own directory that no one else may enter, creating it (mode
    0700) if it is gone. A zygote removes its directory as it exits; its successor must not use
    one another local user made meanwhile, in which a socket of theirs would receive the runs'
    environments (their database URL and API keys)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    found = os.lstat(path)
    return (
        stat.S_ISDIR(found.st_mode)
        and found.st_uid == os.getuid()
        and stat.S_IMODE(found.st_mode) == 0o700
    )


def main(argv: list[str]) -> None:
    path = socket_directory() / "zygote.sock"
    os.environ[SOCKET_ENV] = str(path)
    zygote = start_zygote(path)
    assert zygote is not None  # its directory was made just now
    wait_until_warm(zygote, path, ZYGOTE_READY_SECONDS)
    keeper = keep_zygote(zygote, path)
    share_tls_contexts()
    remember_settings_environment()
    look_promptly()
    from prefect.cli import app  # what the `prefect` command runs

    sys.argv = ["prefect", "worker", "start", *argv]
    try:
        app()  # exits the process with the command's status
    finally:  # its runs stop and say so before it is gone: a container's processes die with it
        keeper.stop()


def start_zygote(path: Path) -> subprocess.Popen[bytes] | None:
    """The zygote, as this process's child (the worker's): it exits with the thread that started
    it (app/pipeline/zygote.py asks the kernel for that). None when its directory is no longer
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
        [sys.executable, "-m", "app.pipeline.zygote"],
        stdin=subprocess.DEVNULL,
        env={**os.environ, SOCKET_ENV: str(path)},
    )


@dataclass
class ZygoteKeeper:
    """The worker's current zygote, replaced when it dies, stopped when the worker stops."""

    current: subprocess.Popen[bytes]
    path: Path
    stopping: threading.Event = field(default_factory=threading.Event)

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
            lived = time.monotonic() - started
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
            if self.stopping.is_set() or (started_again := start_zygote(self.path)) is None:
                threading.Event().wait()  # runs start cold from now on; see above
            else:
                self.current = started_again

    def stop(self) -> None:
        """Stop the zygote and wait while it stops its runs (SIGTERM, SIGKILL after a grace), whose
        launchers Prefect's worker SIGKILLed: they say why they ended before the worker is gone."""
        self.stopping.set()
        zygote = self.current
        zygote.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            zygote.wait(STOP_GRACE_SECONDS + ZYGOTE_STOP_MARGIN_SECONDS)


def keep_zygote(zygote: subprocess.Popen[bytes], path: Path) -> ZygoteKeeper:
    """Keep the worker's zygote, in a thread of its own (ZygoteKeeper.keep)."""
    keeper = ZygoteKeeper(zygote, path)
    threading.Thread(target=keeper.keep, name="zygote-keeper", daemon=True).start()
    return keeper


def remember_settings_environment(keep: int = 8) -> None:
    """For each flow run it starts, Prefect's worker renders its whole settings object into
    environment variables twice (the job's base environment, the engine command's), walking
    every field for secrets: ~30% of a worker's CPU in a burst. The settings object in use does
    not change while the worker runs, so each rendering is kept per settings object — the same
    object, by identity, held here so its id is never reused — and copied out on each call."""
    from prefect.settings.base import PrefectBaseSettings

    render = PrefectBaseSettings.to_environment_variables
    kept: list[tuple[PrefectBaseSettings, tuple[bool, bool, bool], dict[str, str]]] = []
    rendering = False  # the nested settings a rendering walks are not kept apart

    def to_environment_variables(
        self: PrefectBaseSettings,
        exclude_unset: bool = False,
        include_secrets: bool = True,
        include_aliases: bool = False,
    ) -> dict[str, str]:
        nonlocal rendering
        options = (exclude_unset, include_secrets, include_aliases)
        if rendering:
            return render(self, *options)
        for settings, kept_options, environment in kept:
            if settings is self and kept_options == options:
                return dict(environment)
        rendering = True
        try:
            environment = render(self, *options)
        finally:
            rendering = False
        kept.insert(0, (self, options, environment))
        del kept[keep:]
        return dict(environment)

    PrefectBaseSettings.to_environment_variables = to_environment_variables  # type: ignore[method-assign]


def look_promptly() -> None:
    """Prefect's worker looks for scheduled runs every PREFECT_WORKER_QUERY_SECONDS (10 s by
    default). Two moments need not wait for the next poll, and now have it look at once:

    - a flow run scheduled on its pool, if it has a free slot: the server's
      `prefect.flow-run.Scheduled` event, from its event stream (the one Prefect's worker already
      reads for cancellations). Under a burst the workers are full, and each event would cost the
      server a look for nothing;
    - one of its runs ending, which frees a slot of its --limit for a run waiting. Only a run that
      did run counts: a run the server would not let start (a concurrency limit) is not asked for
      again and again.

    The poll stays, for what these miss: runs scheduled for later coming due, an event stream that
    is down (it is tried again every LISTEN_RETRY_SECONDS). Looks never overlap: one asked for
    while another is under way follows it, and any number asked for meanwhile make one."""
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.workers.base import BaseWorker

    poll = BaseWorker.get_and_submit_flow_runs
    submit = BaseWorker._submit_run_and_capture_errors
    enter, leave = BaseWorker.__aenter__, BaseWorker.__aexit__
    locks: dict[int, asyncio.Lock] = {}
    wanted: dict[int, bool] = {}
    looking: dict[int, asyncio.Task[None]] = {}
    listening: dict[int, asyncio.Task[None]] = {}
    scheduled = EventFilter(event=EventNameFilter(name=["prefect.flow-run.Scheduled"]))

    async def get_and_submit_flow_runs(self: BaseWorker) -> list[Any]:
        async with locks.setdefault(id(self), asyncio.Lock()):
            return await poll(self)

    async def look_while_wanted(self: BaseWorker) -> None:
        while wanted.pop(id(self), False):
            try:
                await self.get_and_submit_flow_runs()
            except Exception as exc:  # the server away for a moment: the next poll tries again
                self._logger.warning("looking for the next flow run failed: %r", exc)
                return

    def look_soon(self: BaseWorker) -> None:
        wanted[id(self)] = True
        task = looking.get(id(self))
        if task is None or task.done():
            looking[id(self)] = asyncio.create_task(look_while_wanted(self))

    async def listen(self: BaseWorker) -> None:
        while True:
            try:
                async with get_events_subscriber(filter=scheduled) as events:
                    async for event in events:
                        pools = event.resources_in_role.get("work-pool", [])
                        full = self._limiter is not None and self._limiter.available_tokens < 1
                        if not full and any(p.name == self._work_pool_name for p in pools):
                            look_soon(self)  # a full worker looks when one of its runs ends
            except Exception as exc:
                self._logger.warning(
                    "not hearing of new flow runs (%r): they start at the next poll; "
                    "listening again in %.0f s",
                    exc,
                    LISTEN_RETRY_SECONDS,
                )
            await asyncio.sleep(LISTEN_RETRY_SECONDS)

    async def _submit_run_and_capture_errors(
        self: BaseWorker,
        flow_run: Any,
        task_status: Any = None,
    ) -> Any:
        result = await submit(self, flow_run, task_status)
        if not isinstance(result, Exception):
            look_soon(self)
        return result

    async def __aenter__(self: BaseWorker) -> BaseWorker:
        worker = await enter(self)
        listening[id(self)] = asyncio.create_task(listen(self))
        return worker

    async def __aexit__(self: BaseWorker, *exc_info: Any) -> None:
        if task := listening.pop(id(self), None):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await leave(self, *exc_info)

    BaseWorker.get_and_submit_flow_runs = get_and_submit_flow_runs  # type: ignore[method-assign]
    BaseWorker._submit_run_and_capture_errors = _submit_run_and_capture_errors  # type: ignore[method-assign]
    BaseWorker.__aenter__ = __aenter__  # type: ignore[method-assign,assignment]
    BaseWorker.__aexit__ = __aexit__  # type: ignore[method-assign]


def wait_until_warm(zygote: subprocess.Popen[bytes], path: Path, within: float) -> None:
    """Poll for runs only once the zygote listens, so the first runs start warm too. A zygote
    that dies or takes too long costs nothing but the warm start: runs then start cold."""
    deadline = time.monotonic() + within
    while not path.exists():
        if zygote.poll() is not None or time.monotonic() > deadline:
            print(f"zygote not ready ({path}); flow runs will start cold", file=sys.stderr)
            return
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1:])
