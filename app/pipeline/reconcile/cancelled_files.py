"""What the retention sweep removes of a cancelled run that its flow-run process left behind: every
file but its rejects file, as the process itself does when its stopped stage ends in time
(app/pipeline/stage_stop.py).

A process is killed 5 s after the cancel's SIGTERM; a Polars query longer than that (ingest of
20M records) dies with it, and the run kept raw/ and its ingested.parquet — 1.4 GB — for
PIPELINE_RETENTION_DAYS. The sweep removes them once no process can still be writing there: the
run was cancelled more than CANCELLED_GRACE ago and nothing in its directory has changed for as
long. A worker signals its run's process within seconds of the cancel, and Prefect kills it 5 s
later. A process whose worker was away then (killed) is signalled by no one: it runs on only
until its current stage ends (its next status write finds the run cancelled and ends the flow),
seconds to a minute (a 50M-record run's five stages take 20 s here). Ten minutes is well past
both; and a stage still writing keeps changing its files, so a directory written to lately is
left for a later sweep, however long ago the run was cancelled.
"""

import contextlib
import logging
import os
from datetime import UTC, datetime, timedelta

from app.pipeline.stage_stop import is_rejects, keep_only_rejects
from app.pipeline.store import RunFiles

CANCELLED_GRACE = timedelta(minutes=10)
logger = logging.getLogger(__name__)


def clear_cancelled(files: RunFiles, *, cancelled_at: datetime, now: datetime) -> bool:
    """Remove what a run cancelled more than CANCELLED_GRACE ago holds but its rejects file, once
    its directory has been untouched for as long; True when that left only the rejects file. A
    directory it cannot read or empty (permissions) is said once and left: the sweep goes on."""
    cutoff = now - CANCELLED_GRACE
    if cancelled_at >= cutoff:
        return False
    try:
        if not _holds_more_than_rejects(files) or _last_change(files.root) >= cutoff:
            return False
        keep_only_rejects(files)
        cleared = not _holds_more_than_rejects(files)
    except FileNotFoundError:  # removed meanwhile (its pipeline deleted)
        return False
    except OSError as exc:  # e.g. PermissionError: said once, and the sweep goes on
        _said_once(files, str(exc))
        return False
    if not cleared:  # rmtree ignores what it cannot remove
        _said_once(files, "some of its files could not be removed")
    return cleared


_SAID: set[str] = set()  # the directories whose clearing failed, said once per process


def _said_once(files: RunFiles, why: str) -> None:
    if str(files.root) not in _SAID:
        _SAID.add(str(files.root))
        logger.warning("retention: cannot clear cancelled run directory %s: %s", files.root, why)


def _holds_more_than_rejects(files: RunFiles) -> bool:
    with os.scandir(files.root) as entries:
        return any(not is_rejects(entry.name, files.rejects) for entry in entries)


def _last_change(root: os.PathLike[str] | str) -> datetime:
    """The newest modification time in the directory, at every depth (a part being written in
    raw/ changes raw/'s file, not raw/ itself)."""
    newest = os.lstat(root).st_mtime
    for directory, subdirectories, names in os.walk(root):
        for name in [*subdirectories, *names]:
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, os.lstat(os.path.join(directory, name)).st_mtime)
    return datetime.fromtimestamp(newest, UTC)
