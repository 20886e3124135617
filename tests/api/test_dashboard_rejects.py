"""The dashboard links a run's rejects file only when it holds a rejected row. A run stopped in
ingest (0 rejected) showed "Rejected rows (CSV)", and the file held only its header line: its
ingest stage, stopped, never counted `records_rejected`, so "none rejected" was not seen."""

import shutil
from datetime import timedelta

import httpx
import pytest

from app.models import Status
from app.pipeline.status import CANCELLED_IN_PREFECT
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL
from app.pipeline.store import RunFiles, runs_dir
from tests.support.html import parse
from tests.support.rejects import write_rejects
from tests.support.rows import T0, add_pipeline, add_run, done

LINK = "Rejected rows (CSV)"


@pytest.fixture(autouse=True)
def no_run_files() -> None:
    """Run ids restart with every test's database: start without any run directory."""
    shutil.rmtree(runs_dir(), ignore_errors=True)


def _stopped_in_ingest(status: Status, error: str) -> dict[str, dict[str, object]]:
    return {
        "generate": done(9.5, 10_000_000, 10_000_000),
        "ingest": {
            "status": status,
            "started_at": T0,
            "completed_at": T0 + timedelta(seconds=1),
            "records_in": 10_000_000,
            "attempts": 1,
            "error": error if status == Status.FAILED else None,
        },
    }


async def _links(client: httpx.AsyncClient, pipeline_id: int) -> list[tuple[str, str | None]]:
    """The page's download links, and the same of its live fragment (they must agree)."""
    found = []
    for path in (f"/pipelines/{pipeline_id}", f"/pipelines/{pipeline_id}/progress"):
        page = parse((await client.get(path)).text)
        lists = page.select("ul", "downloads")
        found.append([(a.text, a.attrs["href"]) for ul in lists for a in ul.select("a")])
    assert found[0] == found[1]
    return found[0]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (Status.FAILED, STOPPED_WITHOUT_CANCEL),  # `make down` while the run was in ingest
        (Status.CANCELLED, CANCELLED_IN_PREFECT),
    ],
    ids=["stopped", "cancelled"],
)
async def test_a_run_stopped_in_ingest_links_its_rejects_only_when_the_file_has_rows(
    client: httpx.AsyncClient, status: Status, error: str
) -> None:
    pipeline_id = await add_pipeline("stopped", record_count=10_000_000)
    run_id = await add_run(
        pipeline_id,
        status,
        _stopped_in_ingest(status, error),
        error=f"ingest: {error}" if status == Status.FAILED else error,
    )
    files = RunFiles.for_run(run_id)
    link = (LINK, f"/api/pipelines/{pipeline_id}/runs/{run_id}/rejects?format=csv")

    write_rejects(files.rejects, 0)  # its thread wrote the file on after the stop: no row
    assert await _links(client, pipeline_id) == []
    files.rejects.write_bytes(b"not Parquet")  # nothing a download could convert
    assert await _links(client, pipeline_id) == []
    write_rejects(files.rejects, 2)  # it rejected two rows before it was stopped
    assert await _links(client, pipeline_id) == [link]


async def test_a_finished_ingest_is_taken_at_its_count_without_reading_the_file(
    client: httpx.AsyncClient,
) -> None:
    """A stage that finished counted its rejects: the page trusts the count, as it did."""
    names = ("generate", "ingest", "process", "transform", "export")
    pipeline_id = await add_pipeline("counted")
    stages = {name: done(0.5, 10, 10) for name in names}
    run_id = await add_run(
        pipeline_id, Status.COMPLETED, {**stages, "ingest": done(0.5, 10, 8, rejected=2)}
    )
    files = RunFiles.for_run(run_id)
    files.root.mkdir(parents=True)
    files.rejects.write_bytes(b"not read")
    base = f"/api/pipelines/{pipeline_id}/runs/{run_id}"
    assert await _links(client, pipeline_id) == [(LINK, f"{base}/rejects?format=csv")]
