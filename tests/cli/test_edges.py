"""`pipeline` at its edges: what it is given that it cannot use is bad usage (exit 2) or a refusal
naming the cause, never a crash (exit 70), and --timeout is never overrun."""

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.client.schemas.schedules import IntervalSchedule

from app.cli import service, watch
from app.models import Status
from tests.api.test_schedule_round_trip import in_prefect  # noqa: F401 (a fixture)
from tests.cli.conftest import Cli
from tests.conftest import Configure
from tests.support.rows import add_pipeline, add_run, done


def _said(stderr: str) -> str:
    """Typer's usage error as one line of text, out of the box it draws around it."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", stderr).split())


async def test_a_pipe_is_no_file_to_upload(cli: Cli, tmp_path: Path) -> None:
    """A pipe's size is unknown: the upload once declared 0 bytes, sent more and crashed."""
    fifo = tmp_path / "orders.csv"
    os.mkfifo(fifo)
    result = await cli("run", "--file", str(fifo))
    assert result.exit_code == 2
    assert f"{fifo} is not a regular file; save the data to a file first" in _said(result.stderr)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000x", "http://[::1"])
async def test_a_malformed_api_url_is_bad_usage(cli: Cli, url: str) -> None:
    result = await cli("--api-url", url, "list")
    assert result.exit_code == 2
    assert "Invalid port" in _said(result.stderr)
    assert "check PIPELINE_API_URL" in _said(result.stderr)


@pytest.mark.parametrize("url", ["localhost:8000", "127.0.0.1:8000", "ftp://host/api"])
async def test_an_api_url_without_http_is_bad_usage_not_an_unreachable_api(
    cli: Cli, url: str
) -> None:
    result = await cli("--api-url", url, "list")
    assert result.exit_code == 2
    assert f"{url!r} does not start with http:// or https://; e.g. http://localhost:8000 " in (
        _said(result.stderr)
    )


async def test_spaces_around_the_api_key_are_dropped(cli: Cli, configure: Configure) -> None:
    await configure(API_KEYS="sekret1")
    result = await cli("list", "--json", env={"PIPELINE_API_KEY": " sekret1 "})
    assert result.exit_code == 0, result.stderr


async def test_the_port_of_up_must_be_a_port(cli: Cli) -> None:
    result = await cli("up", "--api-port", "99999")
    assert result.exit_code == 2
    assert "Invalid value for '--api-port': Input should be less than or equal to 65535" in (
        _said(result.stderr)
    )


async def test_watch_sleeps_no_longer_than_its_timeout(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--interval 60 --timeout 0.2: it once slept the whole minute before giving up."""
    await add_run(await add_pipeline("slow"), Status.PENDING, {})
    slept: list[float] = []
    real_sleep = watch.time.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(watch.time, "sleep", sleep)
    result = await cli("watch", "1", "--timeout", "0.2", "--interval", "60")
    assert result.exit_code == 7
    assert slept and max(slept) <= 0.2


async def test_a_narrow_terminal_drops_columns_never_the_ids(cli: Cli) -> None:
    """At 40 columns the ids were cut to nothing (`│││ sta… │`), and they are what every other
    command needs."""
    for name in ("first", "a rather long pipeline name"):
        pipeline_id = await add_pipeline(name, record_count=75_000_000)
        await add_run(pipeline_id, Status.FAILED, {}, error="ingest: boom")
    listed = await cli("list", env={"COLUMNS": "40"})
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 40
    assert [cell.strip() for cell in lines[1].split("│")[1:-1]] == [
        "id",
        "name",
        "status",
        "records",
    ]
    ids = [line.split("│")[1].strip() for line in lines[3:-2] if line.split("│")[1].strip()]
    assert ids == ["2", "1"]
    shown = await cli("show", "2", env={"COLUMNS": "40"})
    runs = shown.stdout.split("runs (1, newest first)\n")[1].splitlines()
    assert max(len(line) for line in runs) <= 40
    assert [cell.strip() for cell in runs[1].split("│")[1:-1]] == ["run", "status", "error"]
    assert runs[3].split("│")[1].strip() == "2"


async def test_show_says_when_it_lists_only_the_newest_runs(cli: Cli) -> None:
    pipeline_id = await add_pipeline("busy")
    for _ in range(101):
        await add_run(pipeline_id, Status.COMPLETED, {})
    shown = await cli("show", str(pipeline_id))
    assert "runs (the newest 100 of 101, newest first)\n" in shown.stdout


def test_an_api_url_whose_host_cannot_be_encoded_is_bad_usage() -> None:
    """http://a..b: the idna codec refuses the empty label; it was exit 70, an error of ours.
    (The real client: the in-process one of the other tests never encodes a host.)"""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pipeline"), "--api-url", "http://a..b", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert _said(result.stderr).startswith("error: http://a..b is not a usable address (")


async def test_a_narrow_terminal_drops_stage_columns_never_cuts_status_or_duration(
    cli: Cli,
) -> None:
    """At 60 columns the stage table showed `complet…` and `durati…`."""
    pipeline_id = await add_pipeline("orders", record_count=3)
    await add_run(
        pipeline_id,
        Status.FAILED,
        {
            "generate": done(0.1, 3, 3),
            "ingest": {
                "status": Status.FAILED,
                "duration_seconds": 4.0,
                "records_in": 3,
                "records_out": 0,
                "error": "RecordsRejectedError: all 3 input records were rejected",
            },
            **{
                name: {"status": Status.CANCELLED, "message": "not run: an earlier stage failed"}
                for name in ("process", "transform", "export")
            },
        },
        error="ingest: RecordsRejectedError: all 3 input records were rejected",
    )
    shown = await cli("show", "1", env={"COLUMNS": "60"})
    assert shown.stdout.splitlines()[5:14] == [  # the error goes first, then records in
        "╭───────────┬───────────┬──────────┬─────────────╮",
        "│ stage     │ status    │ duration │ records out │",
        "├───────────┼───────────┼──────────┼─────────────┤",
        "│ generate  │ completed │   0.10 s │           3 │",
        "│ ingest    │ failed    │   4.00 s │           0 │",
        "│ process   │ cancelled │          │             │",
        "│ transform │ cancelled │          │             │",
        "│ export    │ cancelled │          │             │",
        "╰───────────┴───────────┴──────────┴─────────────╯",
    ]
    watched = await cli("watch", "1", env={"COLUMNS": "40"})  # --wait's table: the same
    assert (watched.exit_code, watched.stdout.splitlines()) == (
        1,
        [
            "pipeline 1 “orders” · run 1 · failed",
            "╭───────────┬───────────┬──────────╮",
            "│ stage     │ status    │ duration │",
            "├───────────┼───────────┼──────────┤",
            "│ generate  │ completed │   0.10 s │",
            "│ ingest    │ failed    │   4.00 s │",
            "│ process   │ cancelled │          │",
            "│ transform │ cancelled │          │",
            "│ export    │ cancelled │          │",
            "╰───────────┴───────────┴──────────╯",
        ],
    )


async def test_a_page_past_the_end_of_a_filtered_list_says_so(cli: Cli) -> None:
    """`list --status failed --page 5` said there were no failed pipelines at all."""
    for name in ("a", "b", "c"):
        await add_run(await add_pipeline(name), Status.FAILED, {})
    past = await cli("list", "--status", "failed", "--limit", "1", "--page", "5")
    assert (past.exit_code, past.stdout) == (
        0,
        "no pipelines on page 5; there are 3 whose latest run is failed\n",
    )
    none = await cli("list", "--status", "running", "--page", "2")
    assert (none.exit_code, none.stdout) == (0, "no pipelines whose latest run is running\n")


@pytest.mark.parametrize("when", [[], ["--cron", "0 6 * * *", "--every", "60"]])
async def test_a_schedule_needs_a_cron_or_an_interval(cli: Cli, when: list[str]) -> None:
    """Neither (or both) was exit 2 without the usage box every other bad usage shows."""
    result = await cli("schedule", "set", "1", *when)
    assert (result.exit_code, result.stdout) == (2, "")
    said = _said(result.stderr)
    assert said.startswith("Usage: pipeline schedule set [OPTIONS] ")
    assert said.endswith(
        "Try 'pipeline schedule set --help' for help. "
        "Error Invalid value for --cron: give exactly one of --cron or --every"
    )


@pytest.mark.parametrize(("typed", "echo"), [("n\n", "n\n"), ("", "\n")])
async def test_a_delete_not_confirmed_deletes_nothing_and_is_no_failure(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, typed: str, echo: str
) -> None:
    """Answering no printed "Aborted." and exited 1, the code of a failed run."""
    await add_pipeline("kept")
    monkeypatch.setattr(service, "_interactive", lambda: True)  # a person at a terminal
    result = await cli("delete", "1", input=typed)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"Delete pipeline 1, every run of it and their files? [y/N]: {echo}pipeline 1 not deleted\n",
        "",
    )
    assert (await cli("show", "1")).exit_code == 0


async def test_up_hands_its_state_directory_to_the_stack(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.stack import commands

    given: list[list[str]] = []
    monkeypatch.setattr(commands, "main", given.append)
    result = await cli("up", "--state-dir", "var-2", "--api-port", "8001")
    assert result.exit_code == 0, result.stderr
    assert given == [
        ["--workers=1", "--worker-limit=4", "--prefect-port=4200", "--api-port=8001",
         "--state-dir=var-2"]
    ]  # fmt: skip


async def test_an_interval_schedule_keeps_the_anchor_it_was_given(
    cli: Cli,
    in_prefect: dict[int, DeploymentSchedule],  # noqa: F811 (the fixture imported above)
) -> None:
    pipeline_id = await add_pipeline("at six")
    result = await cli(
        "schedule", "set", str(pipeline_id), "--every", "86400",
        "--anchor", "2026-01-01T06:00:00+01:00", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["anchor_date"] == "2026-01-01T05:00:00Z"
    assert in_prefect[pipeline_id].schedule == IntervalSchedule(
        interval=timedelta(days=1), anchor_date=datetime(2026, 1, 1, 5, tzinfo=UTC), timezone="UTC"
    )
    with_cron = await cli(
        "schedule", "set", str(pipeline_id), "--cron", "0 6 * * *", "--anchor", "2026-01-01T06:00Z"
    )
    assert with_cron.exit_code == 2
    assert _said(with_cron.stderr).endswith(
        "Error Invalid value for --anchor: --anchor goes with --every, not --cron"
    )
