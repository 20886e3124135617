"""`pipeline download`: a run's files through the API, as another machine gets them."""

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from app.models import Status
from app.pipeline.store import RunFiles
from tests.cli.conftest import Cli
from tests.support.rows import add_pipeline, add_run, done
from tests.support.stages import run_stages_on

INPUT = (
    "id,name,category,value,quantity,is_active,created_at,note\n"
    "1,Zoë 🚀,A,100,60,true,2026-03-01 12:00:00,x\n"
    "2,日本,B,20.5,2,false,2026-03-02 00:00:00,\n"
    "3,bad,Q,10,1,true,2026-03-01,y\n"
)
RESULTS_CSV = (
    "id,name,category,value,quantity,is_active,created_at,note,total_value,"
    "category_avg_total_value,is_high_value,tier,discount_factor,discounted_value\n"
    "1,Zoë 🚀,A,100.0,60,true,2026-03-01T12:00:00.000000,x,6000.0,6000.0,true,standard,0.9,5400.0\n"
    "2,日本,B,20.5,2,false,2026-03-02T00:00:00.000000,,41.0,41.0,false,basic,0.85,34.85\n"
)


WIDE = {"COLUMNS": "200"}  # a usage error's box on one line


def usage_error(message: str, width: int = 200) -> str:
    """Typer's usage error for `pipeline download` as it prints it: the usage, then the message
    in a box `width` columns wide."""
    return (
        "Usage: pipeline download [OPTIONS] {pipeline_id} [what]\n"
        "Try 'pipeline download --help' for help.\n"
        f"╭─ Error {'─' * (width - 10)}╮\n"
        f"│ {message.ljust(width - 4)} │\n"
        f"╰{'─' * (width - 2)}╯\n"
    )


pytestmark = pytest.mark.usefixtures("here")  # tests/cli/conftest.py


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def completed_run(tmp_path: Path) -> int:
    """Pipeline 1 and its completed run 1, whose files the five stages wrote."""
    pipeline_id = await add_pipeline("orders")
    run_id = await add_run(
        pipeline_id,
        Status.COMPLETED,
        {
            "generate": done(0.25, 3, 3),
            "ingest": done(0.25, 3, 2, rejected=1),
            **{name: done(0.25, 2, 2) for name in ("process", "transform", "export")},
        },
        output_file="/srv/elsewhere.parquet",
        duration_seconds=1.5,
        records_processed=2,
    )
    source = tmp_path / "input.csv"
    source.write_text(INPUT)
    run_stages_on(run_id, source, "csv")
    return run_id


async def test_the_latest_runs_results_are_saved_under_the_apis_name(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    await completed_run(tmp_path)
    as_csv = await cli("download", "1", "--format", "csv")
    size = len(RESULTS_CSV.encode())
    assert (as_csv.exit_code, as_csv.stdout, as_csv.stderr) == (
        0,
        f"saved pipeline-1-run-1-results.csv ({size:,} bytes)\n",
        "",
    )
    saved = here / "pipeline-1-run-1-results.csv"
    assert saved.read_text() == RESULTS_CSV
    assert oct(saved.stat().st_mode & 0o777) == "0o644"  # as a shell's redirect makes it

    parquet = await cli("download", "1")
    assert parquet.exit_code == 0
    assert_frame_equal(
        pl.read_parquet(here / "pipeline-1-run-1-results.parquet"),
        pl.read_parquet(RunFiles.for_run(1).results),
    )
    assert names(here) == [  # nothing half-written left beside them
        "pipeline-1-run-1-results.csv",
        "pipeline-1-run-1-results.parquet",
    ]


async def test_rejects_to_stdout_and_the_summary_as_json(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    await completed_run(tmp_path)
    rejects = await cli("download", "1", "rejects", "--format", "jsonl", "-o", "-")
    assert rejects.exit_code == 0
    assert [json.loads(line) for line in rejects.stdout.splitlines()] == [
        {
            "id": "3",
            "name": "bad",
            "category": "Q",
            "value": "10",
            "quantity": "1",
            "is_active": "true",
            "created_at": "2026-03-01",
            "note": "y",
            "reject_reason": "unknown category (must be A, B, C or D)",
        }
    ]
    assert names(here) == []

    summary = await cli("download", "1", "summary", "--run", "1", "-o", str(tmp_path))
    assert (summary.exit_code, summary.stdout) == (
        0,
        f"saved {tmp_path}/pipeline-1-run-1-summary.json "
        f"({(tmp_path / 'pipeline-1-run-1-summary.json').stat().st_size:,} bytes)\n",
    )
    assert [
        (row["category"], row["records"])
        for row in json.loads((tmp_path / "pipeline-1-run-1-summary.json").read_text())
    ] == [("A", 1), ("B", 1)]


async def test_an_existing_file_is_kept_unless_forced(cli: Cli, tmp_path: Path, here: Path) -> None:
    await completed_run(tmp_path)
    target = here / "mine.csv"
    target.write_text("keep me\n")
    refused = await cli("download", "1", "--format", "csv", "-o", "mine.csv", env=WIDE)
    assert (refused.exit_code, refused.stderr) == (
        2,
        usage_error(
            "Invalid value for --output: mine.csv exists; pass --force to replace it, or "
            "--output another path"
        ),
    )
    assert target.read_text() == "keep me\n"

    forced = await cli("download", "1", "--format", "csv", "-o", "mine.csv", "--force")
    assert forced.exit_code == 0
    assert target.read_text() == RESULTS_CSV


async def test_what_cannot_be_downloaded_says_why_and_writes_nothing(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    await add_pipeline("never run")
    never = await cli("download", "1")
    assert (never.exit_code, never.stderr) == (
        4,
        "error: pipeline 1 has not run yet; start it with `pipeline trigger 1`\n",
    )
    failed = await add_run(1, Status.FAILED, {}, error="ingest: boom")
    not_completed = await cli("download", "1", "--format", "csv")
    assert not_completed.exit_code == 4
    assert not_completed.stderr == (
        f"error: run {failed} of pipeline 1 has no output: it failed before writing any file "
        "(ingest: boom)\n"
    )
    summary_format = await cli("download", "1", "summary", "--format", "csv", env=WIDE)
    assert (summary_format.exit_code, summary_format.stderr) == (
        2,
        usage_error(
            "Invalid value for --format: only results and rejects take a format; the summary is JSON "
            "(leave --format out)"
        ),
    )
    assert names(here) == []


async def test_show_and_watch_name_the_download_not_the_servers_path(
    cli: Cli, tmp_path: Path
) -> None:
    await completed_run(tmp_path)
    shown = await cli("show", "1")
    assert "  results   pipeline download 1\n" in shown.stdout
    assert "/srv/elsewhere.parquet" not in shown.stdout
    watched = await cli("watch", "1")
    assert watched.stdout.endswith(
        "run 1 of pipeline 1 completed in 1.50 s: 2 records processed, 1 rejected; "
        "save them with `pipeline download 1`\n"
    )
