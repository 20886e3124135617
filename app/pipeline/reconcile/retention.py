"""Retention: what the API's watchdog loop removes from the run directories on its sweeps.

- A run's whole directory, PIPELINE_RETENTION_DAYS after the run finished. A pending or running
  run's directory is never removed; a directory without a run row (its pipeline was deleted) goes
  once its files are that old.
- A completed run's intermediate files (ingested.parquet, processed.parquet: 0.94 of a 10M-record
  run's 1.65 GB), which nothing reads once export has run, unless PIPELINE_KEEP_INTERMEDIATES. Here,
  not in the export stage, because unlinking ~1 GB of just-written files costs a 10M-record run
  ~0.2 s. What a completed run keeps: its input (raw/), transformed.parquet and output/ (one file,
  hard-linked), the rejects and their conversions. A failed run keeps everything, to be looked at.
- A cancelled run's files but its rejects file, when its flow-run process was killed before it
  could remove them itself, once nothing can still be writing them (reconcile/cancelled_files.py),
  whatever PIPELINE_RETENTION_DAYS and PIPELINE_KEEP_INTERMEDIATES say.
- The second name a download gives the file it serves (data_dir/serving), when the API process was
  killed before the response removed it, SERVING_GRACE after the last download of that file began.
- A run directory whose removal was cut short (a process killed between renaming it and
  deleting it: store.remove_run_directory), once untouched for REMOVAL_GRACE.
- What a killed process left in data_dir/uploads (an upload cut off, or one whose pipeline's
  delete did not get to its files) and data_dir/tmp (an input file's decompressed scratch), once
  nothing in it has changed for LEFTOVER_GRACE; an upload a pipeline reads is never removed.
"""

import asyncio
import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, Status, utcnow
from app.pipeline.reconcile.cancelled_files import clear_cancelled
from app.pipeline.store import (
    REMOVING,
    RunFiles,
    remove_run_directory,
    runs_dir,
    serving_dir,
    uploads_dir,
)

logger = logging.getLogger(__name__)
_QUERY_CHUNK = 500
SERVING_GRACE = timedelta(hours=1)
LEFTOVER_GRACE = timedelta(days=1)  # longer than any upload or input check takes
REMOVAL_GRACE = timedelta(minutes=10)  # a removal under way changes its directory all along


class _Run(NamedTuple):
    status: Status
    finished_at: datetime  # when final; the creation time otherwise


@dataclass
class Sweep:
    """What one pass removed: whole run directories, completed runs' intermediate files,
    cancelled runs' files but their rejects, and download links left behind."""

    removed: list[int] = field(default_factory=list)
    trimmed: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)
    unlinked: int = 0
    leftovers: int = 0


async def _runs(ids: list[int]) -> dict[int, _Run]:
    """The status of each run, by id: four columns, not ORM objects (a pass reads every run)."""
    found: dict[int, _Run] = {}
    columns = (PipelineRun.id, PipelineRun.status, PipelineRun.completed_at, PipelineRun.created_at)
    async with get_sessionmaker()() as session:
        for start in range(0, len(ids), _QUERY_CHUNK):
            chunk = ids[start : start + _QUERY_CHUNK]
            rows = await session.execute(select(*columns).where(PipelineRun.id.in_(chunk)))
            found.update(
                {
                    run_id: _Run(status, completed_at or created_at)
                    for run_id, status, completed_at, created_at in rows
                }
            )
    return found


def _run_directories(root: Path) -> dict[int, Path]:
    if not root.is_dir():
        return {}
    with os.scandir(root) as entries:
        return {int(e.name): Path(e.path) for e in entries if e.name.isdigit() and e.is_dir()}


def _expired(path: Path, run: _Run | None, cutoff: datetime) -> bool:
    if run is None:
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC) < cutoff
        except FileNotFoundError:  # removed meanwhile (a DELETE): the rest of the pass goes on
            return False
    return run.status.is_final and run.finished_at < cutoff


def remove_intermediates(files: RunFiles) -> bool:
    """Remove a completed run's intermediate files; True when there were any."""
    found = False
    for path in (files.ingested, files.processed):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            found = True
    return found


def _sweep_files(
    directories: dict[int, Path],
    runs: dict[int, _Run],
    *,
    cutoff: datetime | None,
    keep_intermediates: bool,
    now: datetime,
) -> Sweep:
    sweep = Sweep()
    for run_id, path in sorted(directories.items()):
        run = runs.get(run_id)
        if cutoff is not None and _expired(path, run, cutoff):
            remove_run_directory(path)
            sweep.removed.append(run_id)
        elif run is None:
            continue
        elif (
            not keep_intermediates
            and run.status is Status.COMPLETED
            and remove_intermediates(RunFiles(path))
        ):
            sweep.trimmed.append(run_id)
        elif run.status is Status.CANCELLED and clear_cancelled(
            RunFiles(path), cancelled_at=run.finished_at, now=now
        ):
            sweep.cleared.append(run_id)
    return sweep


def _sweep_removals(root: Path, cutoff: datetime) -> int:
    """Delete what removals cut short left: nothing else has a name starting with REMOVING. Its
    change time moved with the rename and moves with each entry a removal deletes."""
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(root) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if not entry.name.startswith(REMOVING) or _changed(entry) >= cutoff:
                    continue
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    return removed


def _changed(entry: os.DirEntry[str]) -> datetime:
    return datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_ctime, UTC)


def _sweep_serving(root: Path, cutoff: datetime) -> int:
    """Remove the download links left behind by a killed API process. A link's change time moves
    with every link and unlink of its file, so one older than the cutoff is no download's that is
    still opening it; a download in progress holds its file open, which the removal does not cut.
    """
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(root) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if datetime.fromtimestamp(entry.stat().st_ctime, UTC) < cutoff:
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _last_change(path: Path) -> float:
    """The newest modification time of `path` and what is directly in it."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        with os.scandir(path) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def _sweep_leftovers(roots: list[Path], kept: set[str], cutoff: datetime) -> int:
    removed = 0
    for root in roots:
        with contextlib.suppress(FileNotFoundError), os.scandir(root) as entries:
            for entry in entries:
                path = Path(entry.path)
                with contextlib.suppress(FileNotFoundError):
                    if (
                        entry.name in kept
                        or datetime.fromtimestamp(_last_change(path), UTC) >= cutoff
                    ):
                        continue
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed += 1
    return removed


async def _uploads_in_use() -> set[str]:
    """The upload directories pipelines read their input from, by name."""
    async with get_sessionmaker()() as session:
        paths = await session.scalars(
            select(Pipeline.input_path).where(Pipeline.input_path.is_not(None))
        )
        return {Path(path).parent.name for path in paths if path}


async def sweep_runs(*, now: datetime | None = None) -> Sweep:
    """One retention pass over the run directories (see the module's docstring)."""
    now = now or utcnow()
    unlinked = await asyncio.to_thread(_sweep_serving, serving_dir(), now - SERVING_GRACE)
    if unlinked:
        logger.info("retention: removed download links a stopped API process left: %d", unlinked)
    data_dir = get_settings().data_dir
    leftovers = await asyncio.to_thread(
        _sweep_leftovers,
        [uploads_dir(), data_dir / "tmp"],
        await _uploads_in_use(),
        now - LEFTOVER_GRACE,
    ) + await asyncio.to_thread(_sweep_removals, runs_dir(), now - REMOVAL_GRACE)
    if leftovers:
        logger.info(
            "retention: removed what stopped processes left (uploads, scratch, run directories): %d",
            leftovers,
        )
    settings = get_settings()
    days, keep_intermediates = settings.retention_days, settings.keep_intermediates
    directories = await asyncio.to_thread(_run_directories, runs_dir())
    if not directories:
        return Sweep(unlinked=unlinked, leftovers=leftovers)
    cutoff = now - timedelta(days=days) if days > 0 else None
    runs = await _runs(sorted(directories))
    sweep = await asyncio.to_thread(
        _sweep_files,
        directories,
        runs,
        cutoff=cutoff,
        keep_intermediates=keep_intermediates,
        now=now,
    )
    sweep.unlinked, sweep.leftovers = unlinked, leftovers
    if sweep.removed:
        logger.info(
            "retention: removed the files of %s (older than %g days)",
            _runs_named(sweep.removed),
            days,
        )
    if sweep.trimmed:
        logger.info(
            "retention: removed the intermediate files of completed %s", _runs_named(sweep.trimmed)
        )
    if sweep.cleared:
        logger.info(
            "retention: removed the files of cancelled %s, all but their rejects files (left by "
            "flow-run processes killed before they could remove them)",
            _runs_named(sweep.cleared),
        )
    return sweep


def _runs_named(ids: list[int], *, shown: int = 20) -> str:
    """`runs 3, 5, 8`; the first sweep after an upgrade may name thousands: `runs 1, 2, … (4,000)`."""
    named = ", ".join(str(run_id) for run_id in ids[:shown])
    return f"runs {named}" if len(ids) <= shown else f"runs {named}, … ({len(ids):,})"
