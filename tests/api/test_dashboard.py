"""The dashboard's HTML routes on a real database (SQLite and PostgreSQL): the list with its
filter and paging, the form, a pipeline's page and the progress fragment it polls."""

import shutil
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.models import Status
from app.pipeline.store import RunFiles, runs_dir
from tests.support.html import parse
from tests.support.rejects import write_rejects
from tests.support.rows import FLOW_RUN_ID, T0, add_pipeline, add_run, done


@pytest.fixture(autouse=True)
def no_run_files() -> None:
    """Run ids restart with every test's database: start without any run directory."""
    shutil.rmtree(runs_dir(), ignore_errors=True)


def write_files(*paths: Path) -> None:
    """Files a run's stages wrote (empty: only their being there matters to the links)."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


async def test_list_shows_pipelines_newest_first_with_their_status(
    client: httpx.AsyncClient,
) -> None:
    await add_pipeline("never run", minutes=1, record_count=250)
    second = await add_pipeline("nightly", minutes=2, record_count=1_000_000)
    await add_run(second, Status.COMPLETED, {}, duration_seconds=83.4)
    third = await add_pipeline("<script>alert(1)</script>", minutes=3)
    await add_run(third, Status.FAILED, {}, duration_seconds=1.5)

    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = parse(response.text)
    assert page.select("table", "pipelines")[0].rows() == [
        [
            "3",
            "<script>alert(1)</script>",
            "failed",
            "1,000",
            "2026-11-25 09:03:00 UTC",
            "run 2, 1.50 s",
        ],
        ["2", "nightly", "completed", "1,000,000", "2026-11-25 09:02:00 UTC", "run 1, 1 min 23 s"],
        ["1", "never run", "created", "250", "2026-11-25 09:01:00 UTC", "—"],
    ]
    assert "<script>alert(1)</script>" not in response.text  # escaped, never markup
    assert [a.attrs["href"] for a in page.select("table")[0].select("a")] == [
        "/pipelines/3",
        "/pipelines/2",
        "/pipelines/1",
    ]
    assert [b.attrs["class"] for b in page.select("span", "badge")] == [
        "badge badge-failed",
        "badge badge-completed",
        "badge badge-created",
    ]
    assert page.select("nav", "pager")[0].text == "Page 1 of 1 (3 pipelines)"


async def test_list_pages_and_filters_by_status(client: httpx.AsyncClient) -> None:
    for number in range(1, 24):
        pipeline_id = await add_pipeline(f"p{number}", minutes=number)
        if number % 10 == 0:
            await add_run(pipeline_id, Status.COMPLETED, {})

    first = parse((await client.get("/")).text)
    assert [row[1] for row in first.select("table")[0].rows()] == [
        f"p{n}" for n in range(23, 3, -1)
    ]
    pager = first.select("nav", "pager")[0]
    assert pager.text == "Page 1 of 2 (23 pipelines) Next →"
    assert [a.attrs["href"] for a in pager.select("a")] == ["/?page=2"]

    second = parse((await client.get("/", params={"page": 2})).text)
    assert [row[1] for row in second.select("table")[0].rows()] == ["p3", "p2", "p1"]
    assert second.select("nav", "pager")[0].text == "← Previous Page 2 of 2 (23 pipelines)"

    completed = parse((await client.get("/", params={"status": "completed"})).text)
    assert [row[1] for row in completed.select("table")[0].rows()] == ["p20", "p10"]
    assert [
        option.attrs.get("value")
        for option in completed.by_id("status-filter").select("option")
        if "selected" in option.attrs
    ] == ["completed"]
    assert completed.select("nav", "pager")[0].text == "Page 1 of 1 (2 pipelines)"

    none = parse((await client.get("/", params={"status": "failed"})).text)
    assert none.select("table") == []
    assert none.select("p", "notice")[0].text == "No failed pipelines."

    anything = parse((await client.get("/", params={"status": "done"})).text)
    assert (
        anything.select("p", "notice")[0].text
        == "No status is called “done”; showing every pipeline."
    )
    assert len(anything.select("table")[0].rows()) == 20


async def test_the_list_fragment_is_the_pages_list_region(client: httpx.AsyncClient) -> None:
    for number in range(1, 24):
        pipeline_id = await add_pipeline(f"p{number}", minutes=number)
        status = {3: Status.RUNNING, 13: Status.PENDING, 20: Status.COMPLETED}.get(number)
        if status:
            await add_run(pipeline_id, status, {})

    for params, active in (({}, 1), ({"page": 2}, 1), ({"status": "completed"}, 0)):
        page = parse((await client.get("/", params=params)).text).by_id("pipeline-list")
        response = await client.get("/pipelines-list", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        fragment = parse(response.text).by_id("pipeline-list")
        assert fragment.rows() == page.rows(), params
        assert fragment.select("nav", "pager")[0].text == page.select("nav", "pager")[0].text
        # the page polls the same query; faster while a pipeline on it is pending or running
        assert fragment.attrs["data-query"] == page.attrs["data-query"]
        assert fragment.attrs["data-active"] == str(active), params
    second = parse((await client.get("/pipelines-list", params={"page": 2})).text)
    assert second.by_id("pipeline-list").attrs["data-query"] == "page=2"
    assert [row[1:3] for row in second.select("table")[0].rows()] == [
        ["p3", "running"],
        ["p2", "created"],
        ["p1", "created"],
    ]
    unknown = parse((await client.get("/pipelines-list", params={"status": "done"})).text)
    assert unknown.by_id("pipeline-list").attrs["data-query"] == "page=1"
    assert len(unknown.select("table")[0].rows()) == 20


async def test_the_form_has_a_label_for_every_input(client: httpx.AsyncClient) -> None:
    page = parse((await client.get("/")).text)
    form = page.by_id("create-form")
    controls = [e.attrs["id"] for e in form.find_all(lambda e: e.tag in ("input", "select"))]
    assert controls == ["name", "record_count", "file", "format"]
    labels = {label.attrs["for"]: label.text for label in form.select("label")}
    assert labels == {
        "name": "Name",
        "record_count": "Records to generate",
        "file": "Input file (optional)",
        "format": "File format",
    }
    assert page.by_id("record_count-hint").text == (
        "1 to 50,000,000; not used when you upload a file (its rows are the records)."
    )


async def test_failed_run_page_shows_stages_error_and_links(client: httpx.AsyncClient) -> None:
    pipeline_id = await add_pipeline("orders")
    error = "RecordsRejectedError: all 3 input records were rejected (unknown category: 3)"
    run_id = await add_run(
        pipeline_id,
        Status.FAILED,
        {
            "generate": done(0.25, 3, 3),
            "ingest": {
                "status": Status.FAILED,
                "started_at": T0,
                "completed_at": T0 + timedelta(seconds=0.75),
                "duration_seconds": 0.75,
                "records_in": 3,
                "attempts": 1,
                "error": error,
            },
            **{
                name: {"status": Status.CANCELLED, "message": "not run: an earlier stage failed"}
                for name in ("process", "transform", "export")
            },
        },
        error=f"ingest: {error}",
        prefect_flow_run_id=FLOW_RUN_ID,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=1),
        duration_seconds=1.0,
    )
    write_rejects(RunFiles.for_run(run_id).rejects, 3)  # its 3 rows, all rejected

    response = await client.get(f"/pipelines/{pipeline_id}")
    assert response.status_code == 200
    page = parse(response.text)
    assert page.select("h1")[0].text == f"orders #{pipeline_id}"
    progress = page.by_id("progress")
    assert (progress.attrs["data-status"], progress.attrs["data-run-id"]) == ("failed", str(run_id))
    assert progress.attrs["aria-live"] == "polite"
    assert (
        page.select("p", "progress-line")[0].text
        == f"failed Run {run_id} failed (1 of 5 stages done)."
    )
    assert page.by_id("run-error").text == f"Error: ingest: {error}"
    assert page.by_id("prefect-link").attrs["href"] == (
        f"http://127.0.0.1:9/runs/flow-run/{FLOW_RUN_ID}"
    )
    assert page.select("table", "stages")[0].rows() == [
        ["generate", "completed", "0.25 s", "3", "3", "0", ""],
        ["ingest", "failed", "0.75 s", "3", "—", "—", error],
        ["process", "cancelled", "—", "—", "—", "—", "not run: an earlier stage failed"],
        ["transform", "cancelled", "—", "—", "—", "—", "not run: an earlier stage failed"],
        ["export", "cancelled", "—", "—", "—", "—", "not run: an earlier stage failed"],
    ]
    assert [bar.attrs["style"] for bar in page.select("span", "bar-fill")] == [
        "width: 25.0%",
        "width: 75.0%",
        "width: 0.0%",
        "width: 0.0%",
        "width: 0.0%",
    ]
    assert [(a.text, a.attrs["href"]) for a in page.select("ul", "downloads")[0].select("a")] == [
        ("Rejected rows (CSV)", f"/api/pipelines/{pipeline_id}/runs/{run_id}/rejects?format=csv")
    ]
    buttons = page.by_id("actions").select("button")
    assert [(b.attrs["data-action"], b.text) for b in buttons] == [
        ("cancel", "Cancel run"),
        ("retry", "Retry"),
        ("trigger", "Run again"),
        ("delete", "Delete pipeline"),
    ]
    assert page.by_id("delete-button").attrs["data-pipeline-name"] == "orders"
    # a scrolling region reachable by keyboard
    assert page.by_id("log-tail").attrs["tabindex"] == "0"


async def test_progress_fragment_of_a_running_and_a_completed_run(
    client: httpx.AsyncClient,
) -> None:
    pipeline_id = await add_pipeline("live")
    running_stage = {"status": Status.RUNNING, "started_at": T0, "records_in": 1000, "attempts": 2}
    await add_run(
        pipeline_id,
        Status.RUNNING,
        {"generate": done(0.5, 1000, 1000), "ingest": running_stage},
        prefect_flow_run_id=FLOW_RUN_ID,
        started_at=T0,
    )
    response = await client.get(f"/pipelines/{pipeline_id}/progress")
    assert response.status_code == 200
    fragment = parse(response.text)
    progress = fragment.by_id("progress")
    assert progress.attrs["data-status"] == "running"
    assert fragment.select("p", "progress-line")[0].text == (
        "running Run 1 is running: ingest (1 of 5 stages done)."
    )
    assert fragment.select("table", "stages")[0].rows()[:2] == [
        ["generate", "completed", "0.50 s", "1,000", "1,000", "0", ""],
        ["ingest", "running (2 attempts)", "running…", "1,000", "—", "—", ""],
    ]
    assert fragment.select("span", "bar-running") != []
    assert fragment.select("ul", "downloads") == []  # nothing to download while it runs
    assert [e.attrs["data-key"] for e in fragment.find_all(lambda e: "data-key" in e.attrs)] == [
        "summary",
        *(f"stage-{name}" for name in ("generate", "ingest", "process", "transform", "export")),
        "downloads",
    ]

    run_id = await add_run(
        pipeline_id,
        Status.COMPLETED,
        {
            "generate": done(1.0, 1000, 1000),
            "ingest": done(0.5, 1000, 990, 10),
            "process": done(0.25, 990, 990),
            "transform": done(2.0, 990, 990),
            "export": done(0.25, 990, 990),
        },
        records_processed=990,
        duration_seconds=4.5,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=4.5),
    )
    files = RunFiles.for_run(run_id)
    write_files(files.results, files.summary, files.rejects)
    fragment = parse((await client.get(f"/pipelines/{pipeline_id}/progress")).text)
    assert fragment.by_id("progress").attrs["data-run-id"] == str(run_id)
    assert [dd.text for dd in fragment.select("dd")] == [
        "2",
        "2026-11-25 09:00:00 UTC",
        "2026-11-25 09:00:04 UTC",
        "4.50 s",
        "990",
        "10",
    ]
    assert [bar.attrs["style"] for bar in fragment.select("span", "bar-fill")] == [
        "width: 25.0%",
        "width: 12.5%",
        "width: 6.2%",
        "width: 50.0%",
        "width: 6.2%",
    ]
    base = f"/api/pipelines/{pipeline_id}/runs/{run_id}"
    assert [(a.text, a.attrs["href"]) for a in fragment.select("a") if "download" in a.attrs] == [
        ("Results (parquet)", f"{base}/output?format=parquet"),
        ("Results (csv)", f"{base}/output?format=csv"),
        ("Results (jsonl)", f"{base}/output?format=jsonl"),
        ("Summary by category (JSON)", f"{base}/summary"),
        ("Rejected rows (CSV)", f"{base}/rejects?format=csv"),
    ]
