"""Retention: what the API's watchdog loop removes from the run directories on each pass.

- A run's whole directory, PIPELINE_RETENTION_DAYS after the run finished. A pending or running
  run's directory is never removed; a directory without a run row (its pipeline was deleted) goes
  once its files are that old.
- A completed run's intermediate files (ingested.parquet, processed.parquet: 0.94 of a 10M-record
  run's 1.65 GB), which nothing reads once export has run, unless PIPELINE_KEEP_INTERMEDIATES. Here,
  not in the export stage, because unlinking ~1 GB of just-written files costs a 10M-record run
  ~0.2 s. What a completed run keeps: its input (raw/), transformed.parquet and output/ (one file,
  hard-linked), the rejects and their conversions. A failed run keeps everything, to be looked at.
"""

import asyncio
import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline.store import RunFiles, runs_dir

logger = logging.getLogger(__name__)
_QUERY_CHUNK = 500


async def _runs(ids: list[int]) -> dict[int, PipelineRun]:
    found: dict[int, PipelineRun] = {}
    async with get_sessionmaker()() as session:
        for start in range(0, len(ids), _QUERY_CHUNK):
            chunk = ids[start : start + _QUERY_CHUNK]
            rows = await session.execute(select(PipelineRun).where(PipelineRun.id.in_(chunk)))
            found.update({run.id: run for run in rows.scalars()})
    return found


def _expired(path: Path, run: PipelineRun | None, cutoff: datetime) -> bool:
    if run is None:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC) < cutoff
    if not run.status.is_final:
        return False
    return (run.completed_at or run.created_at) < cutoff


@dataclass
class Sweep:
    """What one pass removed: whole run directories, and completed runs' intermediate files."""

    removed: list[int] = field(default_factory=list)
    trimmed: list[int] = field(default_factory=list)


def remove_intermediates(files: RunFiles) -> bool:
    """Remove a completed run's intermediate files; True when there were any."""
    found = False
    for path in (files.ingested, files.processed):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            found = True
    return found


async def sweep_runs(*, now: datetime | None = None) -> Sweep:
    """One retention pass over the run directories (see the module's docstring)."""
    settings = get_settings()
    days, keep_intermediates = settings.retention_days, settings.keep_intermediates
    root = runs_dir()
    sweep = Sweep()
    if (days <= 0 and keep_intermediates) or not root.is_dir():
        return sweep
    directories = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
    if not directories:
        return sweep
    cutoff = (now or utcnow()) - timedelta(days=days) if days > 0 else None
    runs = await _runs(sorted(directories))
    for run_id, path in sorted(directories.items()):
        run = runs.get(run_id)
        if cutoff is not None and _expired(path, run, cutoff):
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
            sweep.removed.append(run_id)
        elif (
            not keep_intermediates
            and run is not None
            and run.status is Status.COMPLETED
            and await asyncio.to_thread(remove_intermediates, RunFiles(path))
        ):
            sweep.trimmed.append(run_id)
    if sweep.removed:
        logger.info(
            "retention: removed the files of runs %s (older than %g days)", sweep.removed, days
        )
    if sweep.trimmed:
        logger.info("retention: removed the intermediate files of completed runs %s", sweep.trimmed)
    return sweep
