"""Retention: run directories are removed PIPELINE_RETENTION_DAYS after their run finished.

Called by the API's watchdog loop. A pending or running run's directory is never removed; a
directory without a run row (its pipeline was deleted) goes once its files are that old.
"""

import asyncio
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import PipelineRun, utcnow
from app.pipeline.store import runs_dir

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


async def remove_expired_runs(*, now: datetime | None = None) -> list[int]:
    """Remove the directories of runs that finished more than PIPELINE_RETENTION_DAYS ago;
    the ids removed. PIPELINE_RETENTION_DAYS=0 keeps everything."""
    days = get_settings().retention_days
    root = runs_dir()
    if days <= 0 or not root.is_dir():
        return []
    directories = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
    if not directories:
        return []
    cutoff = (now or utcnow()) - timedelta(days=days)
    runs = await _runs(sorted(directories))
    removed = []
    for run_id, path in sorted(directories.items()):
        if _expired(path, runs.get(run_id), cutoff):
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
            removed.append(run_id)
    if removed:
        logger.info("retention: removed the files of runs %s (older than %g days)", removed, days)
    return removed
