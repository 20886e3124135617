"""`pipeline` against the real app and database in-process: tables, JSON, and every kind of error
with its message and exit code. The real command against a running stack: tests/e2e/test_cli.py."""

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, PipelineStage, Status
from app.pipeline.run_logs import RunLog
from app.pipeline.status import STAGE_NAMES, update_pipeline_status
from tests.cli.conftest import CLI_ENV, Cli, LogRead, PrefectLogs
from tests.support.postgres import free_port

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
INGEST_ERROR = (
    "RecordsRejectedError: all 3 input records were rejected (unknown category: 2, null id: 1)"
)
NOT_RUN = "not run: an earlier stage failed"


def _stages(
    statuses: list[Status], durations: list[float | None], records: int
) -> list[PipelineStage]:
    stages = []
    for position, (name, status, took) in enumerate(
        zip(STAGE_NAMES, statuses, durations, strict=True)
    ):
        done = status == Status.COMPLETED
        stages.append(
            PipelineStage(
                name=name,
                position=position,
                status=status,
                attempts=1 if took is not None else 0,
                duration_seconds=took,
                records_in=records if done else None,
                records_out=records if done else None,
                error=INGEST_ERROR if status == Status.FAILED else None,
                message=NOT_RUN if status == Status.CANCELLED else None,
            )
        )
    return stages


async def _seed() -> None:
    """1 "daily": completed; 2 "orders": completed, then failed at ingest; 3 "fresh": never run."""
    completed = [Status.COMPLETED] * 5
    failed = [Status.COMPLETED, Status.FAILED, *[Status.CANCELLED] * 3]
    async with get_sessionmaker()() as session:
        session.add_all(
            [
                Pipeline(name="daily", record_count=1000, created_at=T0),
                Pipeline(name="orders", record_count=3, created_at=T0 + timedelta(hours=1)),
                Pipeline(name="fresh", record_count=50, created_at=T0 + timedelta(hours=2)),
            ]
        )
        await session.flush()
        session.add_all(
            [
                PipelineRun(
                    pipeline_id=1,
                    record_count=1000,
                    status=Status.COMPLETED,
                    created_at=T0,
                    duration_seconds=3.25,
                    records_processed=1000,
                    output_file="/data/runs/1/output/results.parquet",
                    stages=_stages(completed, [0.5, 0.25, 0.1, 0.75, 1.5], 1000),
                ),
                PipelineRun(
                    pipeline_id=2,
                    record_count=3,
                    status=Status.COMPLETED,
                    created_at=T0 + timedelta(hours=1),
                    duration_seconds=12.5,
                    records_processed=3,
                    stages=_stages(completed, [0.5] * 5, 3),
                ),
                PipelineRun(
                    pipeline_id=2,
                    record_count=3,
                    status=Status.FAILED,
                    created_at=T0 + timedelta(hours=1, minutes=5),
                    duration_seconds=75,
                    error=f"ingest: {INGEST_ERROR}",
                    stages=_stages(failed, [0.1, 4.0, None, None, None], 3),
                ),
            ]
        )
        await session.commit()


async def _add_pending_run(pipeline_id: int, flow_run_id: str | None = None) -> None:
    async with get_sessionmaker()() as session:
        session.add(
            PipelineRun(
                pipeline_id=pipeline_id,
                record_count=50,
                status=Status.PENDING,
                prefect_flow_run_id=flow_run_id,
                stages=_stages([Status.PENDING] * 5, [None] * 5, 50),
            )
        )
        await session.commit()


PREFECT_DOWN = (
    "error: Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). Start the server "
    "(make up, or prefect server start) and check PREFECT_API_URL.\n"
)
FAILED_STAGES = (
    "╭───────────┬───────────┬──────────┬────────────┬─────────────┬────────────────────────────────────╮\n"
    "│ stage     │ status    │ duration │ records in │ records out │ error                              │\n"
    "├───────────┼───────────┼──────────┼────────────┼─────────────┼────────────────────────────────────┤\n"
    "│ generate  │ completed │   0.10 s │          3 │           3 │                                    │\n"
    "│ ingest    │ failed    │   4.00 s │            │             │ RecordsRejectedError: all 3 input… │\n"
    "│ process   │ cancelled │          │            │             │ not run: an earlier stage failed   │\n"
    "│ transform │ cancelled │          │            │             │ not run: an earlier stage failed   │\n"
    "│ export    │ cancelled │          │            │             │ not run: an earlier stage failed   │\n"
    "╰───────────┴───────────┴──────────┴────────────┴─────────────┴────────────────────────────────────╯\n"
)


async def test_list_is_a_table_of_the_newest_first(cli: Cli) -> None:
    empty = await cli("list")
    assert (empty.exit_code, empty.stdout) == (
        0,
        "no pipelines yet; create one with: pipeline run --records 1000 --wait\n",
    )
    await _seed()
    result = await cli("list")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "╭────┬──────────┬───────────┬─────────┬─────┬─────────────────────┬────────────╮\n"
        "│ id │ name     │ status    │ records │ run │ created (UTC)       │   duration │\n"
        "├────┼──────────┼───────────┼─────────┼─────┼─────────────────────┼────────────┤\n"
        "│  3 │ fresh    │ created   │      50 │     │ 2026-11-25 11:00:00 │            │\n"
        "│  2 │ orders   │ failed    │       3 │   3 │ 2026-11-25 10:00:00 │ 1 min 15 s │\n"
        "│  1 │ daily    │ completed │   1,000 │   1 │ 2026-11-25 09:00:00 │     3.25 s │\n"
        "╰────┴──────────┴───────────┴─────────┴─────┴─────────────────────┴────────────╯\n"
        "3 of 3 pipeline(s), newest first\n"
    )


async def test_names_are_printed_as_they_are_never_as_markup(cli: Cli) -> None:
    """Rich reads "[/]" as a closing tag: such a name made every `list` a crash."""
    async with get_sessionmaker()() as session:
        session.add(
            Pipeline(
                name="a[/b] [bold]x",
                description="[link=http://x]y[/link]",
                record_count=1000,
                created_at=T0,
            )
        )
        await session.commit()
    listed = await cli("list")
    assert (listed.exit_code, listed.stdout.splitlines()[3]) == (
        0,
        "│  1 │ a[/b] [bold]x │ created │   1,000 │     │ 2026-11-25 09:00:00 │          │",
    )
    shown = await cli("show", "1")
    assert shown.stdout.splitlines()[:3] == [
        "pipeline 1 “a[/b] [bold]x” · created",
        "  records   1,000 (generated)",
        "  about     [link=http://x]y[/link]",
    ]


async def test_list_filters_by_status_and_pages(cli: Cli) -> None:
    await _seed()
    failed = await cli("list", "--status", "failed")
    assert failed.stdout.splitlines()[3:] == [
        "│  2 │ orders   │ failed │       3 │   3 │ 2026-11-25 10:00:00 │ 1 min 15 s │",
        "╰────┴──────────┴────────┴─────────┴─────┴─────────────────────┴────────────╯",
        "1 of 1 pipeline(s), newest first",
    ]
    second = await cli("list", "--limit", "1", "--page", "2")
    assert second.stdout.splitlines()[-1] == "1 of 3 pipeline(s), newest first; next: --page 3"
    assert second.stdout.splitlines()[3].startswith("│  2 │ orders ")
    assert (await cli("list", "--status", "running")).stdout == (
        "no pipelines whose latest run is running\n"
    )
    assert (await cli("list", "--page", "5")).stdout == "no pipelines on page 5; there are 3\n"
    as_json = json.loads((await cli("list", "--json", "--limit", "2")).stdout)
    assert ([p["id"] for p in as_json["items"]], as_json["total"], as_json["page_size"]) == (
        [3, 2],
        3,
        2,
    )


async def test_show_prints_the_latest_runs_stages_then_every_run(cli: Cli) -> None:
    await _seed()
    result = await cli("show", "2")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "pipeline 2 “orders” · failed\n"
        "  records   3 (generated)\n"
        "  created   2026-11-25 10:00:00 UTC\n"
        "  latest    run 3 · failed in 1 min 15 s\n"
        f"  error     ingest: {INGEST_ERROR}\n" + FAILED_STAGES + "runs (2, newest first)\n"
        "╭─────┬───────────┬─────────────────────┬────────────┬───────────┬──────────┬──────────────────────╮\n"
        "│ run │ status    │ created (UTC)       │   duration │ processed │ rejected │ error                │\n"
        "├─────┼───────────┼─────────────────────┼────────────┼───────────┼──────────┼──────────────────────┤\n"
        "│   3 │ failed    │ 2026-11-25 10:05:00 │ 1 min 15 s │           │          │ ingest: RecordsReje… │\n"
        "│   2 │ completed │ 2026-11-25 10:00:00 │     12.5 s │         3 │          │                      │\n"
        "╰─────┴───────────┴─────────────────────┴────────────┴───────────┴──────────┴──────────────────────╯\n"
    )
    fresh = await cli("show", "3")
    assert fresh.stdout.splitlines()[-1] == "  not run yet"
    as_json = json.loads((await cli("show", "2", "--json")).stdout)
    assert (as_json["pipeline"]["latest_run"]["id"], [r["id"] for r in as_json["runs"]]) == (
        3,
        [3, 2],
    )


async def test_watch_exits_by_how_the_run_ended(cli: Cli) -> None:
    await _seed()
    completed = await cli("watch", "1")
    assert (completed.exit_code, completed.stderr) == (0, "")
    assert completed.stdout.splitlines()[0] == (
        "pipeline 1 “daily” · run 1 · completed in 3.25 s · 1,000 processed"
    )
    assert completed.stdout.splitlines()[-1] == (
        "run 1 of pipeline 1 completed in 3.25 s: 1,000 records processed; "
        "save them with `pipeline download 1`"
    )

    failed = await cli("watch", "2")
    assert failed.exit_code == 1
    assert failed.stdout == "pipeline 2 “orders” · run 3 · failed in 1 min 15 s\n" + FAILED_STAGES
    assert failed.stderr == f"error: run 3 of pipeline 2 failed: ingest: {INGEST_ERROR}\n"

    never = await cli("watch", "3")
    assert (never.exit_code, never.stderr) == (
        4,
        "error: pipeline 3 has not run yet; start it with `pipeline trigger 3`\n",
    )


async def test_watch_gives_up_after_its_timeout(cli: Cli) -> None:
    await _seed()
    await _add_pending_run(3)
    result = await cli("watch", "3", "--timeout", "0.3", "--interval", "0.1")
    assert result.exit_code == 7
    assert result.stderr == (
        "error: gave up waiting after 0.3 s: run 4 of pipeline 3 is still pending; "
        "follow it with `pipeline watch 3`\n"
    )
    assert result.stdout.splitlines()[0] == "pipeline 3 “fresh” · run 4 · pending"
    assert [line.split("│")[1:3] for line in result.stdout.splitlines()[4:9]] == [
        [f" {name:<9} ", " pending "] for name in STAGE_NAMES
    ]


async def test_cancel_retry_and_trigger_report_the_apis_answer(cli: Cli) -> None:
    await _seed()
    await _add_pending_run(3)
    cancelled = await cli("cancel", "3")
    assert (cancelled.exit_code, cancelled.stdout) == (0, "run 4 of pipeline 3 cancelled\n")
    assert (await cli("cancel", "3")).exit_code == 0  # cancelling again is harmless

    finished = await cli("cancel", "1")
    assert (finished.exit_code, finished.stderr) == (
        4,
        "error: run 1 of pipeline 1 already completed; only a pending or running run can be "
        "cancelled\n",
    )
    not_failed = await cli("retry", "1")
    assert (not_failed.exit_code, not_failed.stderr) == (
        4,
        "error: pipeline 1 is completed; only a failed or cancelled pipeline can be retried "
        "(use pipeline trigger 1 for a new run)\n",
    )
    # Prefect is really unreachable in these tests: the API's 503 says what to do
    for args in (["retry", "3"], ["trigger", "1"], ["run", "--records", "10"]):
        result = await cli(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (6, "", PREFECT_DOWN), args
    assert json.loads((await cli("list", "--json")).stdout)["total"] == 3  # no run left behind


async def test_delete_asks_first_and_reports_the_apis_refusal(cli: Cli) -> None:
    await _seed()
    await _add_pending_run(3)
    unasked = await cli("delete", "1")  # no terminal to ask on
    assert unasked.exit_code == 2
    assert "add --yes to delete without a terminal" in unasked.stderr
    in_flight = await cli("delete", "3", "--yes")
    assert (in_flight.exit_code, in_flight.stderr) == (
        4,
        # the API's "(POST /api/pipelines/3/cancel)", in the CLI's terms
        "error: run 4 of pipeline 3 is pending; cancel it first (pipeline cancel 3), "
        "then delete the pipeline\n",
    )
    prefect_down = await cli("delete", "1", "--yes")  # its schedule cannot be removed
    assert (prefect_down.exit_code, prefect_down.stderr) == (6, PREFECT_DOWN)
    assert json.loads((await cli("list", "--json")).stdout)["total"] == 3


async def test_bad_input_is_the_apis_message_naming_the_field(cli: Cli, tmp_path: Path) -> None:
    cases = {
        ("run", "--records", "0"): "record_count: must be at least 1; got 0",
        ("run", "--records", "60000000"): "record_count: must be at most "
        "50,000,000 (PIPELINE_MAX_RECORD_COUNT); got 60,000,000",
        ("show", "42"): "pipeline 42 not found",
        ("logs", "42"): "pipeline 42 not found",
    }
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("id,name,category,value,quantity,is_active,created_at\n")
    (tmp_path / "data.txt").write_text("id\n1\n")
    cases |= {
        ("run", "--file", str(tmp_path / "empty.csv")): "file: the file is empty",
        ("run", "--file", str(tmp_path / "header.csv")): "file: the file has no records, only "
        "a header",
        ("run", "--file", str(tmp_path / "data.txt"), "--format", "csv"): "file: missing "
        "required columns: name, category, value, quantity, is_active, created_at; the file's "
        "columns are 'id'",
        # the API's "send format=…" in the terms of this command
        ("run", "--file", str(tmp_path / "data.txt")): "file: cannot tell the format of "
        "'data.txt': name it .csv, .jsonl or .parquet (optionally .gz, .bz2 or .xz compressed), "
        "or pass --format csv|jsonl|parquet",
    }
    for args, message in cases.items():
        result = await cli(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (4, "", f"error: {message}\n")
    assert json.loads((await cli("list", "--json")).stdout)["total"] == 0


async def test_usage_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("id\n")
    both = await cli("run", "--records", "5", "--file", str(tmp_path / "data.csv"))
    assert both.exit_code == 2
    assert "give --records or --file, not both" in both.stderr
    assert (await cli("show", "0")).exit_code == 2
    assert (await cli("list", "--status", "lost")).exit_code == 2
    key = await cli("--api-key", "clé", "list")
    assert key.exit_code == 2
    assert "Invalid value for --api-key: must be printable ASCII" in key.stderr


def test_api_down_is_one_line_naming_the_url_and_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there any more
    expected = (
        f"error: cannot reach the API at {url}: connection refused; start it with `make up` "
        "(or `pipeline up`) or set PIPELINE_API_URL\n"
    )
    runner = CliRunner()
    for args, env in (
        (["list"], {**CLI_ENV, "PIPELINE_API_URL": url}),
        (["--api-url", url, "run", "--records", "5", "--wait"], CLI_ENV),
        (["doctor"], {**CLI_ENV, "PIPELINE_API_URL": url + "/"}),
    ):
        result = runner.invoke(cli_app, args, env=env)
        assert (result.exit_code, result.stdout, result.stderr) == (3, "", expected), args


async def test_an_address_that_is_not_the_service_says_so(cli: Cli) -> None:
    result = await cli("--api-url", "http://cli.test/elsewhere", "list")
    assert (result.exit_code, result.stderr) == (
        4,
        "error: the API at http://cli.test/elsewhere has no GET /api/pipelines; is "
        "PIPELINE_API_URL the pipeline service?\n",
    )


async def test_api_keys_from_the_environment_or_the_option(
    cli: Cli, configure: Callable[..., Awaitable[None]]
) -> None:
    await _seed()
    await configure(API_KEYS="alpha")
    missing = await cli("cancel", "1")
    assert (missing.exit_code, missing.stderr) == (
        5,
        "error: this endpoint needs an API key: send it as 'X-API-Key: <key>' or "
        "'Authorization: Bearer <key>' (keys are configured in API_KEYS); set PIPELINE_API_KEY "
        "(or pass --api-key) to one of the service's API_KEYS\n",
    )
    wrong = await cli("cancel", "1", env={"PIPELINE_API_KEY": "gamma"})
    assert (wrong.exit_code, wrong.stderr) == (
        5,
        "error: the API key is not valid; check the key you send against API_KEYS; set "
        "PIPELINE_API_KEY (or pass --api-key) to one of the service's API_KEYS\n",
    )
    # authorised: the API now answers that a completed run cannot be cancelled
    assert (await cli("cancel", "1", env={"PIPELINE_API_KEY": "alpha"})).exit_code == 4
    assert (await cli("--api-key", "alpha", "cancel", "1")).exit_code == 4
    assert (await cli("list")).exit_code == 0  # reads stay open

    await configure(API_KEYS="alpha", API_KEYS_FOR_READS="true")
    assert (await cli("list")).exit_code == 5
    assert (await cli("list", env={"PIPELINE_API_KEY": "alpha"})).exit_code == 0


async def test_doctor_prints_each_check_with_its_fix_and_exits_1_when_not_ready(cli: Cli) -> None:
    result = await cli("doctor")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    database       ") and lines[0].endswith(" reachable")
    assert lines[1].startswith("ok    migrations     at revision ")
    assert lines[2].startswith("ok    data_dir       ") and lines[2].endswith(" GiB free")
    assert lines[3:] == [
        "FAIL  prefect_api    Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
        "Start the server (make up, or prefect server start) and check PREFECT_API_URL.",
        "                     fix: start the Prefect server and set PREFECT_API_URL (now "
        "http://127.0.0.1:9/api) to its address in every process: API, worker and this one",
        "not ready: 1 check(s) failed",
    ]
    as_json = await cli("doctor", "--json")
    body = json.loads(as_json.stdout)
    assert (as_json.exit_code, body["ready"], [c["name"] for c in body["checks"]]) == (
        1,
        False,
        ["database", "migrations", "data_dir", "prefect_api"],
    )


async def test_logs_are_read_from_prefect(cli: Cli) -> None:
    await _seed()
    never = await cli("logs", "3")
    assert (never.exit_code, never.stdout, never.stderr) == (
        0,
        "",
        "no log lines for pipeline 3 yet\n",
    )
    await _add_pending_run(3, flow_run_id="8f2d7c59-2b4e-4a61-9a51-0d3c1c6f1e22")
    down = await cli("logs", "3")
    assert (down.exit_code, down.stderr) == (6, PREFECT_DOWN)


async def test_logs_go_on_page_by_page_past_the_first_200_lines(
    cli: Cli, prefect_logs: PrefectLogs
) -> None:
    """--follow stopped after the API's first 200 lines while the run went on. And a line that
    reached Prefect late, with an earlier time than lines already printed, was missed while the
    last line before it was printed twice: each poll reads the last 50 lines again."""
    await _seed()
    await _add_pending_run(3, flow_run_id="8f2d7c59-2b4e-4a61-9a51-0d3c1c6f1e22")
    sent: list[RunLog] = []

    def line(n: int, at: datetime, message: str) -> RunLog:
        return RunLog(f"id-{n}", at, "INFO", "prefect", message, None)

    def log(more: int) -> None:
        start = sum(1 for s in sent if s.message != "late")
        sent.extend(
            line(n, T0 + timedelta(seconds=n), f"line {n}") for n in range(start, start + more)
        )

    async def now(read: LogRead) -> list[RunLog]:
        if len(reads) == 4:  # after three pages: a late line, then 20 more, and the run ends
            sent.insert(440, line(-1, T0 + timedelta(seconds=439.5), "late"))
            log(20)
            run_id = await _latest_run_id(3)
            await update_pipeline_status(3, None, Status.COMPLETED, run_id=run_id)
        return sent

    log(450)
    reads = prefect_logs(now)
    followed = await cli("logs", "3", "--follow", "--interval", "0.05", "--json")
    printed = [json.loads(line)["message"] for line in followed.stdout.splitlines()]
    assert (followed.exit_code, followed.stderr) == (0, "")
    assert printed == [f"line {n}" for n in range(450)] + ["late"] + [
        f"line {n}" for n in range(450, 470)
    ]
    assert [read.offset for read in reads[:5]] == [0, 150, 300, 400, 421]
    everything = await cli("logs", "3", "--json")
    assert (everything.exit_code, len(everything.stdout.splitlines())) == (0, 471)


async def test_logs_follow_the_run_that_was_latest_when_they_began(
    cli: Cli, prefect_logs: PrefectLogs
) -> None:
    """A run started meanwhile (a schedule) was followed from the first run's line count: its
    first lines were never printed, and nothing said the run had changed."""
    await _seed()
    first, second = "8f2d7c59-2b4e-4a61-9a51-0d3c1c6f1e22", "0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10"
    await _add_pending_run(3, flow_run_id=first)
    followed_id = await _latest_run_id(3)
    sent = {
        first: [
            RunLog(f"a{n}", T0 + timedelta(seconds=n), "INFO", "p", f"first {n}", None)
            for n in range(3)
        ],
        second: [
            RunLog(f"b{n}", T0 + timedelta(seconds=n), "INFO", "p", f"second {n}", None)
            for n in range(5)
        ],
    }

    async def now(read: LogRead) -> list[RunLog]:
        if len(reads) == 2:  # the first run ends, and a second one starts
            await update_pipeline_status(3, None, Status.COMPLETED, run_id=followed_id)
            await _add_pending_run(3, flow_run_id=second)
        return sent[read.flow_run_id]

    reads = prefect_logs(now)
    followed = await cli("logs", "3", "--follow", "--interval", "0.05", "--json")
    printed = [json.loads(line)["message"] for line in followed.stdout.splitlines()]
    assert (followed.exit_code, printed) == (0, ["first 0", "first 1", "first 2"])
    assert {read.flow_run_id for read in reads} == {first}


async def _latest_run_id(pipeline_id: int) -> int:
    async with get_sessionmaker()() as session:
        query = select(func.max(PipelineRun.id)).where(PipelineRun.pipeline_id == pipeline_id)
        return (await session.execute(query)).scalar_one()
