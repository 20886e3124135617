"""The dashboard at its edges (SQLite and PostgreSQL): a pipeline never run, a page past the last
one, and runs whose files are partly or wholly gone, which must not get links that 404."""

import shutil
from datetime import timedelta

import httpx
import pytest

from app.models import Status, utcnow
from app.pipeline.store import RunFiles, runs_dir
from tests.support.html import parse
from tests.support.rejects import write_rejects
from tests.support.rows import T0, add_pipeline, add_run, done

REMOVED = "has no files any more: they were removed (PIPELINE_RETENTION_DAYS)"
# ingest began, then the run was cancelled: no stage after it wrote anything
CANCELLED_IN_INGEST = {
    "generate": done(0.5, 1000, 1000),
    "ingest": {"status": Status.CANCELLED, "started_at": T0, "records_in": 1000, "attempts": 1},
}


@pytest.fixture(autouse=True)
def no_run_files() -> None:
    """Run ids restart with every test's database: start without any run directory."""
    shutil.rmtree(runs_dir(), ignore_errors=True)


async def test_a_pipeline_never_run(client: httpx.AsyncClient) -> None:
    pipeline_id = await add_pipeline("fresh")
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    assert page.by_id("progress").attrs["data-status"] == "created"
    assert page.select("p", "progress-line")[0].text == "created Not run yet."
    assert page.select("table") == []


async def test_a_page_past_the_last_says_so_and_links_to_the_last(
    client: httpx.AsyncClient,
) -> None:
    for number in range(1, 24):
        pipeline_id = await add_pipeline(f"p{number}", minutes=number)
        if number == 7:
            await add_run(pipeline_id, Status.COMPLETED, {})

    cases = {
        ("/", 3, ""): (
            "No pipelines on page 3: the last page is page 2.",
            "← Last page (2) 23 pipelines in all",
            "/?page=2",
        ),
        ("/pipelines-list", 5, "completed"): (
            "No completed pipelines on page 5: the last page is page 1.",
            "← Last page (1) 1 pipeline in all",
            "/?page=1&status=completed",
        ),
        ("/", 2, "failed"): (
            "No failed pipelines on page 2: the last page is page 1.",
            "← Last page (1) 0 pipelines in all",
            "/?page=1&status=failed",
        ),
    }
    for (path, number, status), (notice, pager_text, href) in cases.items():
        response = await client.get(path, params={"page": number, "status": status})
        assert response.status_code == 200
        listed = parse(response.text).by_id("pipeline-list")
        assert listed.select("table") == []
        assert listed.select("p", "notice")[0].text == notice
        pager = listed.select("nav", "pager")[0]
        assert pager.text == pager_text
        assert [(a.attrs["href"], a.attrs["rel"]) for a in pager.select("a")] == [(href, "prev")]


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("0", "0"),
        ("-1", "-1"),
        ("-3", "-3"),
        ("abc", "abc"),
        ("two", "two"),
        ("²", "²"),
        ("1.5", "1.5"),
        ("1000001", "1000001"),  # past MAX_PAGE: was page 1,000,000, silently
        ("9" * 5000, "9" * 39 + "…"),
        ("", None),  # left empty: the first page, as no page given is
    ],
)
async def test_a_page_number_that_is_no_page_shows_the_first_saying_so(
    client: httpx.AsyncClient, typed: str, shown: str | None
) -> None:
    """/?page=0 was FastAPI's 422 in JSON, in a browser; then page 1, silently, as if asked."""
    await add_pipeline("only")
    for path in ("/", "/pipelines-list"):
        response = await client.get(path, params={"page": typed, "status": "created"})
        assert (response.status_code, response.headers["content-type"]) == (
            200,
            "text/html; charset=utf-8",
        )
        page = parse(response.text)
        listed = page.by_id("pipeline-list")
        assert listed.attrs["data-query"] == "page=1&status=created"
        assert [a.text for a in listed.select("a") if a.text == "only"] == ["only"]
        if path == "/" and shown is not None:  # the list's page says so (the region is polled)
            notice = page.by_id("no-such-page")
            assert notice.text == (
                f"No page is numbered “{shown}”: pages are numbered from 1 to 1; showing page 1."
            )
            assert [a.attrs["href"] for a in notice.select("a")] == ["/?page=1&status=created"]
        else:
            assert 'id="no-such-page"' not in response.text


async def test_a_completed_run_whose_files_retention_removed(client: httpx.AsyncClient) -> None:
    pipeline_id = await add_pipeline("old")
    stages = {name: done(1.0, 10, 10) for name in ("generate", "ingest", "process", "transform")}
    run_id = await add_run(
        pipeline_id,
        Status.COMPLETED,
        {**stages, "export": done(1.0, 10, 10)},
        completed_at=utcnow() - timedelta(days=31),
    )

    for path in (f"/pipelines/{pipeline_id}", f"/pipelines/{pipeline_id}/progress"):
        page = parse((await client.get(path)).text)
        assert page.select("ul", "downloads") == [], path
        assert page.by_id("files-removed").text == f"Run {run_id} {REMOVED}.", path
    # the links that are gone would have met the download endpoint's 404, in the same words
    output = await client.get(f"/api/pipelines/{pipeline_id}/runs/{run_id}/output")
    assert (output.status_code, output.json()["detail"]) == (
        404,
        f"run {run_id} of pipeline {pipeline_id} {REMOVED}",
    )


async def test_a_run_cancelled_in_ingest_links_only_what_it_wrote(
    client: httpx.AsyncClient,
) -> None:
    pipeline_id = await add_pipeline("stopped")
    ended = utcnow() - timedelta(days=31)
    run_id = await add_run(pipeline_id, Status.CANCELLED, CANCELLED_IN_INGEST, completed_at=ended)
    files = RunFiles.for_run(run_id)
    files.raw.mkdir(parents=True)  # generate's output; ingest was stopped before its rejects

    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    assert page.select("ul", "downloads") == []
    assert not page.has_id("files-removed")  # nothing was removed: it wrote no file to download
    rejects = await client.get(f"/api/pipelines/{pipeline_id}/runs/{run_id}/rejects")
    assert rejects.status_code == 404

    write_rejects(files.rejects, 2)  # its thread wrote them on after the cancel: linked
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    assert [(a.text, a.attrs["href"]) for a in page.select("ul", "downloads")[0].select("a")] == [
        ("Rejected rows (CSV)", f"/api/pipelines/{pipeline_id}/runs/{run_id}/rejects?format=csv")
    ]

    shutil.rmtree(files.root)  # then retention removed its directory
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    assert page.select("ul", "downloads") == []
    assert page.by_id("files-removed").text == f"Run {run_id} {REMOVED}."


async def test_a_run_that_failed_before_writing_anything_mentions_no_files(
    client: httpx.AsyncClient,
) -> None:
    pipeline_id = await add_pipeline("early")
    failed = {"status": Status.FAILED, "started_at": T0, "error": "boom", "attempts": 1}
    await add_run(
        pipeline_id,
        Status.FAILED,
        {"generate": failed},
        completed_at=T0 + timedelta(seconds=1),
        error="generate: boom",
    )
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    assert page.by_id("run-error").text == "Error: generate: boom"
    assert page.select("ul", "downloads") == []
    assert not page.has_id("files-removed")


async def test_a_run_that_rejected_no_row_links_no_rejects_file(
    client: httpx.AsyncClient,
) -> None:
    """Ingest writes the rejects file even when it rejects nothing: the link gave a header only."""
    names = ("generate", "ingest", "process", "transform", "export")
    pipeline_id = await add_pipeline("clean")
    run_id = await add_run(pipeline_id, Status.COMPLETED, {n: done(0.5, 10, 10) for n in names})
    files = RunFiles.for_run(run_id)
    for path in (files.results, files.summary, files.rejects):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    assert [a.text for a in page.select("ul", "downloads")[0].select("a")] == [
        "Results (parquet)",
        "Results (csv)",
        "Results (jsonl)",
        "Summary by category (JSON)",
    ]
