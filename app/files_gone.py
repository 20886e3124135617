"""Why a finished run that wrote files has none now: retention removed them (the run ended longer
than PIPELINE_RETENTION_DAYS ago), or they are missing (PIPELINE_DATA_DIR lost, not mounted, or
pointed elsewhere). The download endpoints' 404 and the dashboard say the same."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from app.config import get_settings
from app.models import utcnow
from app.pipeline.store import RunFiles


class FinishedRun(Protocol):
    """A run row, or the API's view of one."""

    @property
    def id(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def completed_at(self) -> datetime | None: ...


class StageMoment(Protocol):
    """A stage row, or the API's view of one."""

    @property
    def name(self) -> str: ...
    @property
    def started_at(self) -> datetime | None: ...


def wrote_files(completed: bool, stages: Iterable[StageMoment]) -> bool:
    """Whether a finished run had files to lose: a completed one did, and a failed or cancelled
    one whose ingest stage began (before it, a run that ended has nothing to show)."""
    return completed or any(
        stage.name == "ingest" and stage.started_at is not None for stage in stages
    )


def _ended(run: FinishedRun) -> datetime:
    """When the run ended, as retention dates it (a run ended without an end: when it began)."""
    return run.completed_at or run.created_at


def past_retention(run: FinishedRun) -> bool:
    days = get_settings().retention_days
    return days > 0 and utcnow() - _ended(run) > timedelta(days=days)


def no_files(run: FinishedRun) -> str:
    """What follows "run N of pipeline M" when the run's directory is gone."""
    if past_retention(run):
        return "has no files any more: they were removed (PIPELINE_RETENTION_DAYS)"
    days = get_settings().retention_days
    kept = (
        "PIPELINE_RETENTION_DAYS=0 keeps every run's files"
        if days == 0
        else f"it ended {_ended(run):%Y-%m-%d %H:%M} UTC, within PIPELINE_RETENTION_DAYS={days:g}"
    )
    return (
        f"has no files: they are missing from {RunFiles.for_run(run.id).root}, not removed by "
        f"retention ({kept}); check that PIPELINE_DATA_DIR is, in every process, the directory "
        "its worker wrote to, and that its volume is mounted"
    )
