"""Stopping the stage a run is running when the run is stopped, and what a cancelled run keeps.

A stage's work runs in a thread, off the flow's event loop. A stop (app/pipeline/stops.py: a
cancel, SIGTERM, SIGINT) ends the flow's await of it, but Python cannot stop a thread: the stage
wrote on (a cancelled 20M-record run wrote all its 834 MB of parts) and the flow-run process
exited only when it was done. So the thread is handed a stop request, a threading.Event set when
its await is interrupted, that the stage checks between its units of work: generate between its
parts (generator.write_generated). The other stages are one Polars query each, which cannot be
interrupted half-way: they run to their end, as before.

A cancelled run's output is never served, only its rejects file (app/api/results.py); the rest
stayed until PIPELINE_RETENTION_DAYS. Once the stopped stage's thread has ended (nothing writes
into the run's directory any more), a cancelled run keeps its rejects file alone; what a process
killed before then leaves, the retention sweep removes (reconcile/cancelled_files.py). A
failed run, or one stopped without a cancel (a worker shutting down), keeps everything: a retry
or whoever looks into it may want the files.
"""

import asyncio
import contextlib
import contextvars
import logging
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import PipelineRun, Status
from app.pipeline.store import RunFiles

T = TypeVar("T")
Log = logging.Logger | logging.LoggerAdapter[Any]
Work = Callable[[threading.Event], T]  # a stage's work, given its stop request


class StageStoppedError(Exception):
    """A stage saw its stop request and ended between units of work, its output unfinished."""


class StageThreads:
    """The threads one run's stages run in, one at a time, and the stop request they check."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._running: Future[Any] | None = None

    async def run(self, stage: str, work: Work[T]) -> T:
        """`work(stop)` in a thread of its own, in this context (tracing, settings). When the
        await is interrupted while the thread still runs (a stop: a cancel or a signal), `stop`
        is set and the interruption raised at once: the run's end is recorded meanwhile, and
        `finished` waits for the thread."""
        done: Future[T] = Future()
        context = contextvars.copy_context()

        def target() -> None:
            if not done.set_running_or_notify_cancel():  # stopped before it began
                return
            try:
                done.set_result(context.run(work, self.stop))
            except BaseException as exc:  # handed to the await, as asyncio.to_thread does
                done.set_exception(exc)

        self._running = done
        # not a daemon: the process's exit waits for a part being written, as it did
        threading.Thread(target=target, name=f"stage-{stage}").start()
        awaited = asyncio.wrap_future(done)
        try:
            return await awaited
        except BaseException:
            if not done.done():  # interrupted from outside, not the stage's own error
                self.stop.set()
                # what the stage ends with is `finished`'s to read: not left unretrieved here
                # (asyncio would log "Future exception was never retrieved")
                awaited.add_done_callback(_retrieved)
            raise

    async def finished(self) -> BaseException | None:
        """Wait for the last stage's thread to end; what it raised, if anything."""
        running = self._running
        if running is None:
            return None
        with contextlib.suppress(BaseException):  # its outcome is read below, not raised
            await asyncio.wrap_future(running)
        return None if running.cancelled() else running.exception()


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


_current: ContextVar[StageThreads | None] = ContextVar("stage_threads", default=None)


def start_run() -> StageThreads:
    """The threads of the run this flow run is running: its stages (Prefect tasks awaited in the
    flow's own context) find them by `run_stage`."""
    threads = StageThreads()
    _current.set(threads)
    return threads


async def run_stage(stage: str, work: Work[T]) -> T:
    """`work(stop)` as the current run's stage (a stage run outside a flow: its own threads)."""
    return await (_current.get() or StageThreads()).run(stage, work)


async def after_stop(
    threads: StageThreads, files: RunFiles, run_id: int, *, cancelled: bool, log: Log
) -> None:
    """Once the run's stopped stage has ended its thread: if the run ended cancelled (by Prefect,
    or by the API's cancel written first), remove its files but the rejects file. Never raises
    an error: the run's end does not depend on it (the retention sweep removes the files later)."""
    try:
        stopped = await threads.finished()
        if isinstance(stopped, StageStoppedError):
            log.info("run %d: %s", run_id, stopped)
        if not (cancelled or await _ended_cancelled(run_id)):
            return
        await asyncio.to_thread(keep_only_rejects, files)
        log.info("run %d was cancelled: its files were removed, all but its rejects file", run_id)
    except Exception as exc:
        log.warning("run %d: could not remove the files of the cancelled run: %s", run_id, exc)


async def _ended_cancelled(run_id: int) -> bool:
    async with get_sessionmaker()() as session:
        status = await session.scalar(select(PipelineRun.status).where(PipelineRun.id == run_id))
    return status == Status.CANCELLED


def keep_only_rejects(files: RunFiles) -> None:
    """Remove what a cancelled run's directory holds but its rejects file (and conversions of it
    a download may be making): raw parts, intermediate files, unserved output. The directory
    stays, as a failed run's does (its downloads say "it was cancelled", not that files are
    missing); one removed meanwhile (its pipeline deleted) is not made again."""
    try:
        children = list(files.root.iterdir())
    except FileNotFoundError:
        return
    for child in children:
        if is_rejects(child.name, files.rejects):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def is_rejects(name: str, rejects: Path) -> bool:
    """rejects.parquet, rejects.csv, and a conversion being written (.rejects.csv.<id>.tmp)."""
    return name.lstrip(".").startswith(f"{rejects.stem}.")
