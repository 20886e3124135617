"""A run's results over HTTP (output in three formats, summary, rejects), their 404s, downloads
that try to leave the run directory, and retention: of run directories, of intermediate files."""

import io
import json
import logging
import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import update

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import Pipeline, PipelineStage, Status, utcnow
from app.pipeline.reconcile import retention
from app.pipeline.reconcile.retention import SERVING_GRACE, Sweep, sweep_runs
from app.pipeline.store import RunFiles, runs_dir, serving_dir, uploads_dir
from tests.conftest import SetSetting
from tests.support import rows
from tests.support.stages import run_stages_on

INPUT = (
    "id,name,category,value,quantity,is_active,created_at,note\n"
    "1,Zoë 🚀,A,100,60,true,2026-03-01 12:00:00,x\n"
    "2,日本,B,20.5,2,false,2026-03-02 00:00:00,\n"
    "3,bad,Q,10,1,true,2026-03-01,y\n"
)
CSV_OUTPUT = (
    "id,name,category,value,quantity,is_active,created_at,note,total_value,"
    "category_avg_total_value,is_high_value,tier,discount_factor,discounted_value\n"
    "1,Zoë 🚀,A,100.0,60,true,2026-03-01T12:00:00.000000,x,6000.0,6000.0,true,standard,0.9,5400.0\n"
    "2,日本,B,20.5,2,false,2026-03-02T00:00:00.000000,,41.0,41.0,false,basic,0.85,34.85\n"
)


@pytest.fixture(autouse=True)
def no_run_files() -> None:
    """Run ids restart with every test's database: start without any run directory."""
    shutil.rmtree(runs_dir(), ignore_errors=True)


async def add_run(
    pipeline_id: int, status: Status, *, age_days: float = 0, error: str | None = None
) -> int:
    when = utcnow() - timedelta(days=age_days)
    ended = {"completed_at": when} if status.is_final else {}
    return await rows.add_run(
        pipeline_id, status, {}, record_count=3, error=error, created_at=when, **ended
    )


def run_stages(run_id: int, tmp_path: Path) -> RunFiles:
    """The five stages, as the tasks run them, on INPUT for this run."""
    source = tmp_path / "input.csv"
    source.write_text(INPUT)
    return run_stages_on(run_id, source, "csv")


@pytest.fixture
async def completed(client: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[int]:
    """Pipeline 1 with completed run 1 whose files were written by the stages."""
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await add_run(1, Status.COMPLETED)
    run_stages(run_id, tmp_path)
    yield run_id


async def test_output_as_parquet_csv_and_jsonl(client: httpx.AsyncClient, completed: int) -> None:
    base = f"/api/pipelines/1/runs/{completed}/output"
    parquet = await client.get(base)
    assert parquet.status_code == 200
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert parquet.headers["content-disposition"] == (
        'attachment; filename="pipeline-1-run-1-results.parquet"'
    )
    assert_frame_equal(
        pl.read_parquet(io.BytesIO(parquet.content)),
        pl.read_parquet(RunFiles.for_run(completed).results),
    )

    as_csv = await client.get(base, params={"format": "csv"})
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.content.decode() == CSV_OUTPUT

    as_jsonl = await client.get(base, params={"format": "jsonl"})
    assert as_jsonl.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    rows = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert rows[1] == {
        "id": 2,
        "name": "日本",
        "category": "B",
        "value": 20.5,
        "quantity": 2,
        "is_active": False,
        "created_at": "2026-03-02T00:00:00.000000",  # as the CSV download writes it
        "note": None,
        "total_value": 41.0,
        "category_avg_total_value": 41.0,
        "is_high_value": False,
        "tier": "basic",
        "discount_factor": 0.85,
        "discounted_value": 34.85,
    }
    assert [row["name"] for row in rows] == ["Zoë 🚀", "日本"]
    # converted once, then served from the run directory
    assert sorted(p.name for p in RunFiles.for_run(completed).results.parent.iterdir()) == [
        "results.csv",
        "results.jsonl",
        "results.parquet",
        "summary.parquet",
    ]


def _map(name: str, key: str, value: object, value_type: type[pl.DataType]) -> pl.Series:
    pairs = pl.List(pl.Struct({"key": pl.String, "value": value_type}))
    return pl.Series(name, [[{"key": key, "value": value}]], dtype=pairs).cast(
        pl.Map(pl.String, value_type)
    )


async def test_columns_a_text_format_cannot_hold_are_a_422_naming_them(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A Parquet input's extra columns reach the results: lists, binary, durations."""
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await add_run(1, Status.COMPLETED)
    frame = (
        pl.read_csv(io.StringIO(INPUT), infer_schema=False)
        .head(1)
        .with_columns(
            tags=pl.lit(["a", "b"]),
            blob=pl.lit(b"\x00"),
            took=pl.lit(timedelta(seconds=1)),
            blobs=pl.lit([b"\x00"]),  # nested: Polars panicked writing it as JSON (a bare 500)
        )
        .with_columns(  # a Parquet MAP: Polars' Map, which its CSV writer refused (a 500)
            _map("counts", "a", 1, pl.Int64),
            _map("blobmap", "b", b"\x00", pl.Binary),
        )
    )
    frame.write_parquet(tmp_path / "input.parquet")
    run_stages_on(run_id, tmp_path / "input.parquet", "parquet")
    base = f"/api/pipelines/1/runs/{run_id}/output"
    for fmt, problem in (
        (
            "csv",
            "csv cannot hold the column(s) tags (List(String)), blob (Binary), took "
            "(Duration(time_unit='us')), blobs (List(Binary)), counts (Map(String, Int64)), "
            "blobmap (Map(String, Binary)); download format=parquet or format=jsonl",
        ),
        (
            "jsonl",
            "jsonl cannot hold the column(s) blob (Binary), blobs (List(Binary)), blobmap "
            "(Map(String, Binary)); download format=parquet",
        ),
    ):
        refused = await client.get(base, params={"format": fmt})
        assert (refused.status_code, refused.json()) == (
            422,
            {
                "message": f"format: {problem}",
                "detail": [
                    {"loc": ["query", "format"], "msg": problem, "type": "unwritable_column"}
                ],
            },
        )
    assert (await client.get(base)).status_code == 200
    assert list(serving_dir().iterdir()) == []


async def test_a_range_the_file_cannot_serve_is_refused_in_the_error_shape(
    client: httpx.AsyncClient, completed: int
) -> None:
    """Starlette's own answers were text/plain (curl -C - on a file already whole: the 416)."""
    base = f"/api/pipelines/1/runs/{completed}/output"
    size = RunFiles.for_run(completed).results.stat().st_size
    fix = "ask for bytes=START-END, or send no Range for the whole file"
    cases = {
        "bytes=abc": (400, f"Range: 'bytes=abc' names no range; {fix}"),
        "bytes=5-1": (400, f"Range: 'bytes=5-1' ends before it starts; {fix}"),
        "lines=1-2": (400, f"Range: 'lines=1-2' is not in bytes; {fix}"),
        "nonsense": (400, f"Range: 'nonsense' is not of the form bytes=START-END; {fix}"),
        f"bytes={size}-": (
            416,
            f"Range: 'bytes={size}-' starts at or past the end of the file ({size:,} bytes); "
            "ask for less, or send no Range for the whole file",
        ),
    }
    for header, (status, message) in cases.items():
        refused = await client.get(base, headers={"Range": header})
        assert (refused.status_code, refused.json()) == (
            status,
            {"message": message, "detail": message},
        ), header
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers.get("content-range") == (
            f"bytes */{size}" if status == 416 else None
        )
    assert list(serving_dir().iterdir()) == []  # no link left behind
    partial = await client.get(base, headers={"Range": "bytes=0-3"})
    assert (partial.status_code, partial.content) == (206, b"PAR1")


async def test_summary_and_rejects(client: httpx.AsyncClient, completed: int) -> None:
    summary = await client.get(f"/api/pipelines/1/runs/{completed}/summary")
    # saved (the dashboard's link downloads it) under a name like the other downloads', not "summary"
    assert (summary.headers["content-type"], summary.headers["content-disposition"]) == (
        "application/json",
        'attachment; filename="pipeline-1-run-1-summary.json"',
    )
    assert summary.json() == [
        {
            "category": "A",
            "records": 1,
            "total_value": 6000.0,
            "avg_total_value": 6000.0,
            "high_value_records": 1,
            "discounted_value": 5400.0,
        },
        {
            "category": "B",
            "records": 1,
            "total_value": 41.0,
            "avg_total_value": 41.0,
            "high_value_records": 0,
            "discounted_value": 34.85,
        },
    ]
    rejects = await client.get(
        f"/api/pipelines/1/runs/{completed}/rejects", params={"format": "csv"}
    )
    assert rejects.text == (  # as sent, not as cast
        "id,name,category,value,quantity,is_active,created_at,note,reject_reason\n"
        '3,bad,Q,10,1,true,2026-03-01,y,"unknown category (must be A, B, C or D)"\n'
    )


async def test_run_shows_its_rejected_records(client: httpx.AsyncClient, completed: int) -> None:
    async with get_sessionmaker()() as session:
        await session.execute(
            update(PipelineStage)
            .where(PipelineStage.run_id == completed, PipelineStage.name == "ingest")
            .values(records_in=3, records_out=2, records_rejected=1)
        )
        await session.commit()
    run = (await client.get("/api/pipelines/1")).json()["latest_run"]
    assert run["records_rejected"] == 1
    assert [s["records_rejected"] for s in run["stages"]] == [None, 1, None, None, None]


async def test_failed_run_has_rejects_but_no_output(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await add_run(1, Status.FAILED, error="ingest: ValueError: all rejected")
    files = RunFiles.for_run(run_id)
    files.root.mkdir(parents=True)
    pl.DataFrame({"id": [1], "reject_reason": ["null id"]}).write_parquet(files.rejects)
    output = await client.get(f"/api/pipelines/1/runs/{run_id}/output")
    assert output.status_code == 404
    assert output.json()["detail"] == (
        "run 1 of pipeline 1 has no output: it failed (ingest: ValueError: all rejected)"
    )
    rejects = await client.get(
        f"/api/pipelines/1/runs/{run_id}/rejects", params={"format": "jsonl"}
    )
    assert rejects.text == '{"id":1,"reject_reason":"null id"}\n'


async def test_not_found_answers(client: httpx.AsyncClient) -> None:
    await client.post("/api/pipelines", json={"name": "one"})
    await client.post("/api/pipelines", json={"name": "two"})
    pending = await add_run(1, Status.PENDING)
    other = await add_run(2, Status.COMPLETED)
    removed = await add_run(1, Status.COMPLETED, age_days=31)
    never_started = await add_run(1, Status.FAILED)
    cases = {
        f"/api/pipelines/1/runs/{pending}/output": "run 1 of pipeline 1 has no output yet: it is pending",
        f"/api/pipelines/1/runs/{pending}/rejects": "run 1 of pipeline 1 has no rejects file yet: it is pending",
        f"/api/pipelines/1/runs/{other}/summary": "run 2 not found in pipeline 1",
        "/api/pipelines/1/runs/99/output": "run 99 not found in pipeline 1",
        "/api/pipelines/7/runs/1/output": "pipeline 7 not found",
        f"/api/pipelines/1/runs/{removed}/output": (
            "run 3 of pipeline 1 has no files any more: they were removed (PIPELINE_RETENTION_DAYS)"
        ),
        f"/api/pipelines/1/runs/{never_started}/rejects": (
            "run 4 of pipeline 1 has no rejects file: it failed before writing any file"
        ),
    }
    for url, detail in cases.items():
        response = await client.get(url)
        assert (response.status_code, response.json()["detail"]) == (404, detail), url


async def test_downloads_never_leave_the_run_directory(
    client: httpx.AsyncClient, completed: int, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.parquet"
    pl.DataFrame({"password": ["hunter2"]}).write_parquet(secret)
    results = RunFiles.for_run(completed).results
    results.unlink()
    results.symlink_to(secret)
    response = await client.get(f"/api/pipelines/1/runs/{completed}/output")
    assert (response.status_code, response.json()["detail"]) == (
        404,
        "run 1 of pipeline 1: results.parquet is outside the run directory",
    )
    for url in (
        f"/api/pipelines/1/runs/{completed}/output?format=../../secret",
        "/api/pipelines/1/runs/..%2F..%2Fsecret/output",
        "/api/pipelines/1/runs/1%2F..%2F..%2F/output",
    ):
        response = await client.get(url)
        assert response.status_code in (404, 422), url
        assert "hunter2" not in response.text
    bad_format = await client.get(f"/api/pipelines/1/runs/{completed}/output?format=../x")
    assert bad_format.json()["message"] == (
        "format: must be 'parquet', 'csv' or 'jsonl'; got \"../x\""
    )


async def test_retention_removes_only_finished_runs_past_the_limit(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    runs = {
        "old completed": await add_run(1, Status.COMPLETED, age_days=31),
        "old failed": await add_run(1, Status.FAILED, age_days=40),
        "recent completed": await add_run(1, Status.COMPLETED, age_days=29),
        "old running": await add_run(1, Status.RUNNING, age_days=90),
        "old pending": await add_run(1, Status.PENDING, age_days=90),
    }
    for run_id in runs.values():
        (RunFiles.for_run(run_id).root / "output").mkdir(parents=True)
    orphan_old, orphan_new = runs_dir() / "900", runs_dir() / "901"
    orphan_old.mkdir()
    orphan_new.mkdir()
    month_ago = (utcnow() - timedelta(days=31)).timestamp()
    os.utime(orphan_old, (month_ago, month_ago))
    (runs_dir() / "not-a-run").mkdir()

    assert (await sweep_runs()).removed == [runs["old completed"], runs["old failed"], 900]
    assert sorted(p.name for p in runs_dir().iterdir()) == sorted(
        [str(runs[k]) for k in ("recent completed", "old running", "old pending")]
        + ["901", "not-a-run"]
    )
    assert await sweep_runs() == Sweep()
    later = utcnow() + timedelta(days=31)
    assert (await sweep_runs(now=later)).removed == [runs["recent completed"], 901]


async def test_retention_removes_uploads_and_scratch_that_stopped_processes_left(
    client: httpx.AsyncClient,
) -> None:
    """An upload cut off (up to PIPELINE_MAX_UPLOAD_BYTES), one whose pipeline's delete died
    before its files went, an input check's decompressed scratch: kept forever before."""
    day_ago = (utcnow() - timedelta(days=1, minutes=1)).timestamp()

    def made(path: Path, *, old: bool) -> Path:
        path.mkdir(parents=True)
        (path / "input.csv").write_text("id\n")
        if old:
            for item in (path / "input.csv", path):
                os.utime(item, (day_ago, day_ago))
        return path

    used = made(uploads_dir() / ("0" * 32), old=True)
    async with get_sessionmaker()() as session, session.begin():
        session.add(Pipeline(name="reads it", record_count=1, input_path=str(used / "input.csv")))
    cut_off = made(uploads_dir() / ("1" * 32), old=True)
    arriving = made(uploads_dir() / ("2" * 32), old=False)
    scratch = made(get_settings().data_dir / "tmp" / ".input.csv.x1", old=True)
    assert (await sweep_runs()).leftovers == 2
    assert (used.exists(), cut_off.exists(), arriving.exists(), scratch.exists()) == (
        True,
        False,
        True,
        False,
    )
    for left in (used, arriving):  # the data directory outlives this test's database
        shutil.rmtree(left)


def test_a_run_directory_removed_during_a_sweep_does_not_end_the_sweep(tmp_path: Path) -> None:
    """A DELETE removing a run's directory between the sweep's listing and its look at it:
    FileNotFoundError ended the whole pass."""
    assert retention._expired(tmp_path / "900", None, utcnow()) is False


async def test_retention_zero_keeps_everything(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await add_run(1, Status.COMPLETED, age_days=400)
    RunFiles.for_run(run_id).root.mkdir(parents=True)
    setting("PIPELINE_RETENTION_DAYS", "0")
    assert await sweep_runs() == Sweep()
    assert RunFiles.for_run(run_id).root.is_dir()


async def test_retention_removes_download_links_a_killed_process_left(
    client: httpx.AsyncClient, completed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A download serves a hard link in data_dir/serving and removes it when sent; an API killed
    mid-download leaves it. A pass removes links no download began on for SERVING_GRACE."""
    results = RunFiles.for_run(completed).results
    links = results.stat().st_nlink
    written = (utcnow() - 2 * SERVING_GRACE).timestamp()
    os.utime(results, (written, written))  # an old file: a new link to it is still new
    serving_dir().mkdir(parents=True, exist_ok=True)
    left = serving_dir() / "left-behind.parquet"
    os.link(results, left)
    assert (await sweep_runs()).unlinked == 0  # just made: a download may be opening it
    assert left.exists()
    with caplog.at_level(logging.INFO, logger="app.pipeline.reconcile.retention"):
        sweep = await sweep_runs(now=utcnow() + SERVING_GRACE + timedelta(seconds=1))
    assert (sweep.unlinked, list(serving_dir().iterdir())) == (1, [])
    assert caplog.messages == ["retention: removed download links a stopped API process left: 1"]
    assert results.stat().st_nlink == links  # the run's own file stays


def run_files(files: RunFiles) -> list[str]:
    return sorted(str(p.relative_to(files.root)) for p in files.root.rglob("*") if p.is_file())


async def test_completed_runs_lose_only_their_intermediate_files(
    client: httpx.AsyncClient, completed: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failed = await add_run(1, Status.FAILED)
    running = await add_run(1, Status.RUNNING)
    for run_id in (failed, running):
        run_stages(run_id, tmp_path)
    files = RunFiles.for_run(completed)
    everything = run_files(files)
    assert everything == [
        "ingested.parquet",
        "output/results.parquet",
        "output/summary.parquet",
        "processed.parquet",
        "raw/part-00000.parquet",
        "rejects.parquet",
        "transformed.parquet",
    ]

    with caplog.at_level(logging.INFO, logger="app.pipeline.reconcile.retention"):
        assert await sweep_runs() == Sweep(trimmed=[completed])
    assert caplog.messages == ["retention: removed the intermediate files of completed runs 1"]
    assert run_files(files) == [
        "output/results.parquet",
        "output/summary.parquet",
        "raw/part-00000.parquet",
        "rejects.parquet",
        "transformed.parquet",
    ]
    for run_id in (failed, running):
        assert run_files(RunFiles.for_run(run_id)) == everything
    assert await sweep_runs() == Sweep()
    # what a completed run serves is still there
    for what in ("output", "summary", "rejects"):
        response = await client.get(f"/api/pipelines/1/runs/{completed}/{what}")
        assert response.status_code == 200, what


async def test_keep_intermediates(
    client: httpx.AsyncClient, completed: int, setting: SetSetting
) -> None:
    setting("PIPELINE_KEEP_INTERMEDIATES", "true")
    assert await sweep_runs() == Sweep()
    files = RunFiles.for_run(completed)
    assert files.ingested.is_file() and files.processed.is_file()
