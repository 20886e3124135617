"""`python -m app.pipeline.worker [prefect worker start options]`: a Prefect worker with a warm start.

Starts the worker's zygote (warm_start/zygote.py) and then runs `prefect worker start …` in
this process, with the zygote's socket in its environment, so every flow run it starts through
the launcher forks from a process that has already imported Prefect and the pipeline. Two
per-run costs of Prefect's worker are paid once instead: its clients share one TLS context
(app/pipeline/tls.py) and its settings are rendered into environment variables once
(`remember_settings_environment`) — 0.14 → 0.06 CPU-s per flow run in a 100-run burst. And a
run scheduled on its pool, or one of its runs ending, makes the worker look for runs at once
(`look_promptly`), not at its next poll. A worker that stops hands back the runs it took whose
process never started (app/pipeline/hand_back.py). As it starts, it removes the socket directories
that workers killed outright left behind (warm_start/zygote_directory.py). Plain `prefect worker
start` still works: its runs start cold and wait for its poll. Its Prefect server is the one the
service's settings name (PREFECT_API_URL, from the environment or .env), never a throwaway one.
"""

import asyncio
import os
import signal
import sys
from types import FrameType
from typing import Any

from app import scratch
from app.pipeline.hand_back import hand_back_on_stop
from app.pipeline.launcher import SOCKET_ENV
from app.pipeline.tls import share_tls_contexts
from app.pipeline.warm_start.zygote_directory import sweep
from app.pipeline.warm_start.zygote_keeper import (
    ZygoteKeeper,
    keep_zygote,
    socket_directory,
    start_zygote,
    wait_until_warm,
)

ZYGOTE_READY_SECONDS = 60.0
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
LISTEN_RETRY_SECONDS = 30.0


def main(argv: list[str]) -> None:
    use_the_service_prefect_server()
    # Prefect's worker stops on SIGTERM by sending itself SIGINT: one started with SIGINT ignored
    # (a shell script's `cmd &`) ignored that too, and never stopped
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # until Prefect's worker puts in its own: a stop while the zygote warms up ends the start
    signal.signal(signal.SIGTERM, _interrupt)
    # a stop is held until the keeper has the zygote to stop; the zygote starts with it held too,
    # until its own handler is in place (a default SIGTERM left its socket directory behind)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    sweep_socket_directories()
    sweep_temporary_directories()
    path = socket_directory() / "zygote.sock"
    # after the socket's directory: that one stays where a Unix socket's path fits
    scratch.use(temporary := scratch.own_directory())
    os.environ[SOCKET_ENV] = str(path)
    keeper: ZygoteKeeper | None = None
    try:
        zygote = start_zygote(path)
        assert zygote is not None  # its directory was made just now
        keeper = keep_zygote(zygote, path)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        wait_until_warm(zygote, path, ZYGOTE_READY_SECONDS)
        share_tls_contexts()
        remember_settings_environment()
        look_promptly()
        hand_back_on_stop(keeper.stop)
        from prefect.cli import app  # what the `prefect` command runs

        sys.argv = ["prefect", "worker", "start", *argv]
        app()  # exits the process with the command's status
    except KeyboardInterrupt:  # stopped before Prefect's worker took over its stop signals
        print("worker stopped while starting", file=sys.stderr, flush=True)
    finally:  # its runs stop and say so before it is gone: a container's processes die with it
        if keeper is not None:
            keeper.stop()
        scratch.remove_own(temporary)  # a run still going keeps it, for the next worker's sweep


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def use_the_service_prefect_server() -> None:
    """The Prefect server the service's settings name (PREFECT_API_URL from the environment or
    .env, else http://127.0.0.1:4200/api), for this worker, its zygote and its flow runs, and
    never a throwaway one: without PREFECT_API_URL, Prefect's worker started a temporary server of
    its own and failed ("PREFECT_API_URL must be set to start a Worker"); a wrong address now
    fails loudly, as in deploy.py."""
    from app.config import get_settings  # here: the zygote's imports of this module stay light
    from app.shown import shown_prefect_url

    url = get_settings().prefect_api_url
    os.environ["PREFECT_API_URL"] = url
    os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "false"
    # Prefect's server answers 500 while its database refuses connections (asyncpg's
    # ConnectionRefusedError is no error it retries): its clients here retry that too, as they do
    # 502/503 (5 times, ~60 s with their backoff), so a run's state proposal waits out a database
    # restart instead of failing the run; a repeated proposal is refused as a duplicate transition
    os.environ.setdefault("PREFECT_CLIENT_RETRY_EXTRA_CODES", "500")
    print(f"worker: Prefect server {shown_prefect_url(url)}", file=sys.stderr, flush=True)


def sweep_socket_directories() -> None:
    """Remove the socket directories that workers killed outright (their zygotes with them) left
    in the temporary directory: only those certainly dead (warm_start/zygote_directory.py)."""
    if removed := sweep():
        print(
            f"removed {len(removed)} zygote socket director{'y' if len(removed) == 1 else 'ies'} "
            f"left by workers that are gone: {', '.join(str(path) for path in removed)}",
            file=sys.stderr,
            flush=True,
        )


def sweep_temporary_directories() -> None:
    """Remove the temporary directories of workers that are gone, and what Prefect and ddtrace
    left in them: only those whose lock no process holds and that no process uses
    (app/scratch.py)."""
    if removed := scratch.sweep():
        print(
            f"removed {len(removed)} temporary director{'y' if len(removed) == 1 else 'ies'} "
            f"left by workers that are gone: {', '.join(str(path) for path in removed)}",
            file=sys.stderr,
            flush=True,
        )


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


if __name__ == "__main__":
    main(sys.argv[1:])
