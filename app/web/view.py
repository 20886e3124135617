"""How the dashboard shows values: counts, times, duration bars, which links apply."""

from dataclasses import dataclass
from datetime import UTC, datetime

from app.api.schemas import PipelineOut, RunOut, StageOut
from app.models import Status

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
    """(label, URL) of the latest run's files that exist: results and summary once it completed;
    its rejects once ingest has run (a run whose every row was rejected has them too)."""
    run = pipeline.latest_run
    if run is None or run.status.value not in FINAL:
        return []
    base = f"/api/pipelines/{pipeline.id}/runs/{run.id}"
    links: list[tuple[str, str]] = []
    if run.status == Status.COMPLETED:
        links += [(f"Results ({fmt})", f"{base}/output?format={fmt}") for fmt in DOWNLOAD_FORMATS]
        links.append(("Summary by category (JSON)", f"{base}/summary"))
    ingest = next((stage for stage in run.stages if stage.name == "ingest"), None)
    if ingest is not None and ingest.started_at is not None:
        links.append(("Rejected rows (CSV)", f"{base}/rejects?format=csv"))
    return links
