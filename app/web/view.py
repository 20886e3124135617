"""How the dashboard shows values: counts, times, duration bars, which files to link."""

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from app import files_gone
from app.api.schemas import PipelineOut, RunOut, StageOut
from app.models import Status
from app.pipeline.store import RunFiles, count_rows

FINAL = frozenset({"completed", "failed", "cancelled"})
DOWNLOAD_FORMATS = ("parquet", "csv", "jsonl")


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class StageRow:
    """One stage as the page shows it; `bar` is its share of the run's stage time, in percent."""

    stage: StageOut
    bar: float

    @property
    def running(self) -> bool:
        return self.stage.status == Status.RUNNING


def stage_rows(run: RunOut) -> list[StageRow]:
    total = sum(stage.duration_seconds or 0.0 for stage in run.stages)
    return [
        StageRow(stage, round(100 * (stage.duration_seconds or 0.0) / total, 1) if total else 0.0)
        for stage in run.stages
    ]


def progress_line(pipeline: PipelineOut) -> str:
    """One sentence for the live region: where the latest run is."""
    run = pipeline.latest_run
    if run is None:
        return "Not run yet."
    done = (
        f"{sum(s.status == Status.COMPLETED for s in run.stages)} of {len(run.stages)} stages done"
    )
    current = next((s.name for s in run.stages if s.status == Status.RUNNING), None)
    if run.status == Status.RUNNING and current:
        return f"Run {run.id} is running: {current} ({done})."
    return f"Run {run.id} {_STATE[run.status]} ({done})."


_STATE = {
    Status.PENDING: "is waiting for a worker",
    Status.RUNNING: "is running",
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.CANCELLED: "was cancelled",
}


def downloads(pipeline: PipelineOut) -> list[tuple[str, str]]:
    """(label, URL) of the finished latest run's files that exist, so no link is a 404: results and
    summary of a completed run, rejects once ingest wrote some (even when it rejected every row):
    a rejects file of no row holds only a header."""
    run = pipeline.latest_run
    if run is None or run.status.value not in FINAL:
        return []
    files = RunFiles.for_run(run.id)
    base = f"/api/pipelines/{pipeline.id}/runs/{run.id}"
    links: list[tuple[str, str]] = []
    if run.status == Status.COMPLETED and files.results.is_file():
        links += [(f"Results ({fmt})", f"{base}/output?format={fmt}") for fmt in DOWNLOAD_FORMATS]
    if run.status == Status.COMPLETED and files.summary.is_file():
        links.append(("Summary by category (JSON)", f"{base}/summary"))
    if _any_rejected(files, _ingest(run)):
        links.append(("Rejected rows (CSV)", f"{base}/rejects?format=csv"))
    return links


def _any_rejected(files: RunFiles, ingest: StageOut | None) -> bool:
    """Whether the run's rejects file holds a row: as ingest counted them, or, for an ingest that
    did not finish (stopped or cancelled, its thread writing the file on after), as the file's
    footer says (the file appears whole or not at all: app/pipeline/store.sink)."""
    if not files.rejects.is_file():
        return False
    if ingest is not None and ingest.records_rejected is not None:
        return ingest.records_rejected > 0
    try:
        return count_rows(files.rejects) > 0
    except (OSError, pl.exceptions.PolarsError):  # not a Parquet file: nothing to download
        return False


def files_removed(pipeline: PipelineOut) -> str | None:
    """Why a finished run that wrote files has no downloads: its directory is gone (retention,
    or PIPELINE_DATA_DIR lost). The same words as the download endpoints' 404 (app/files_gone)."""
    run = pipeline.latest_run
    if run is None or run.status.value not in FINAL or RunFiles.for_run(run.id).root.exists():
        return None
    if not files_gone.wrote_files(run.status == Status.COMPLETED, run.stages):
        return None  # it ended before it wrote anything
    return f"Run {run.id} {files_gone.no_files(run)}."


def _ingest(run: RunOut) -> StageOut | None:
    """The stage that writes the rejects file."""
    return next((stage for stage in run.stages if stage.name == "ingest"), None)
