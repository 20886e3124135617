"""`pipeline schedule …` in its own terms: --every takes what users type (1h, 15m, 1d), and what
the API refuses is said of the option given (--anchor, not anchor_date) with its fix."""

import json
import re

import pytest
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule
from sqlalchemy import delete

from app.db import get_sessionmaker
from app.models import Pipeline
from tests.api.test_schedule_round_trip import in_prefect  # noqa: F401 (a fixture)
from tests.cli.conftest import AppTransport, Cli
from tests.support.prefect_schedules import FakePrefect, prefect  # noqa: F401 (a fixture)
from tests.support.rows import add_pipeline


def _said(stderr: str) -> str:
    """Typer's usage error as one line of text, out of the box it draws around it."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", stderr).split())


async def _remove_rows(pipeline_id: int) -> None:
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))


@pytest.mark.parametrize(
    ("every", "seconds"),
    [
        ("3600", 3600),
        ("1h", 3600),
        ("90s", 90),
        ("15m", 900),
        ("1d", 86_400),
        ("1h30m", 5400),
        ("12d", 1_036_800),  # said as 1.0368e+06 s
        ("366d", 31_622_400),
    ],
)
async def test_every_takes_seconds_or_a_duration(
    cli: Cli,
    transport: AppTransport,
    in_prefect: dict[int, DeploymentSchedule],  # noqa: F811 (the fixture imported above)
    every: str,
    seconds: int,
) -> None:
    """`--every 1h` was a usage error: "Input should be a valid integer, unable to parse string
    as an integer"."""
    pipeline_id = await add_pipeline("hourly")
    result = await cli("schedule", "set", str(pipeline_id), "--every", every, "--paused")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"pipeline {pipeline_id}: every {seconds} s (UTC); next run: paused\n",
        "",
    )
    assert json.loads(transport.sent[-1].content) == {
        "timezone": "UTC",
        "active": False,
        "interval_seconds": seconds,
    }


@pytest.mark.parametrize(
    ("every", "said"),
    [
        # pydantic's "Input should be greater than or equal to 10", where the API says this
        ("5", "must be at least 10 seconds; got 5"),
        ("5s", "must be at least 10 seconds; got 5s"),
        ("400d", "must be at most 366 days (31,622,400 seconds); got 400d"),
        (
            "1.5h",
            "takes seconds, like 3600, or a duration like 90s, 15m, 1h, 1d or 1h30m; got '1.5h'",
        ),
    ],
)
async def test_an_interval_it_cannot_take_is_bad_usage_saying_what_it_takes(
    cli: Cli, transport: AppTransport, every: str, said: str
) -> None:
    result = await cli("schedule", "set", "1", "--every", every)
    assert (result.exit_code, result.stdout) == (2, "")
    assert _said(result.stderr).endswith(f"Error Invalid value for --every: {said}")
    assert transport.sent == []


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (
            ["--every", "1h", "--anchor", "2026-01-01T06:00:00"],
            "--anchor: needs its UTC offset, like 2026-01-01T06:00:00Z (UTC) or "
            '2026-01-01T06:00:00+01:00; got "2026-01-01T06:00:00"',
        ),
        (
            ["--every", "1h", "--anchor", "0001-01-01T00:00:00Z"],
            "--anchor: must be between 1900-01-01 and 2200-01-01 (UTC); "
            "got 0001-01-01T00:00:00+00:00",
        ),
        (
            ["--cron", "0 0 6 * * *", "--timezone", "Paris"],
            "--cron: '0 0 6 * * *' has 6 fields; a cron has five: minute hour day-of-month month "
            "day-of-week (no seconds); --timezone: unknown timezone 'Paris'; use an IANA name "
            "such as 'UTC' or 'Europe/Paris'",
        ),
    ],
)
async def test_what_the_api_refuses_is_said_of_the_option(
    cli: Cli,
    in_prefect: dict[int, DeploymentSchedule],  # noqa: F811
    options: list[str],
    said: str,
) -> None:
    """It said `error: anchor_date: Input should have timezone info`: the API's field name, and
    no example."""
    pipeline_id = await add_pipeline("refused")
    result = await cli("schedule", "set", str(pipeline_id), *options)
    assert (result.exit_code, result.stdout, result.stderr) == (4, "", f"error: {said}\n")
    assert in_prefect == {}


async def test_a_schedule_whose_pipeline_is_gone_is_listed_with_how_to_remove_it(
    cli: Cli,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    kept, orphan = await add_pipeline("kept"), await add_pipeline("crashed")
    for pipeline_id in (kept, orphan):
        result = await cli("schedule", "set", str(pipeline_id), "--cron", "0 6 * * *", "--paused")
        assert result.exit_code == 0, result.stderr
    await _remove_rows(orphan)

    listed = await cli("schedules")
    assert (listed.exit_code, listed.stdout.splitlines()) == (
        0,
        [
            "╭──────────┬──────────────────────┬────────────────╮",
            "│ pipeline │ when                 │ next run (UTC) │",
            "├──────────┼──────────────────────┼────────────────┤",
            f"│        {kept} │ cron 0 6 * * * (UTC) │ paused         │",
            f"│        {orphan} │ cron 0 6 * * * (UTC) │ pipeline gone  │",
            "╰──────────┴──────────────────────┴────────────────╯",
            f"pipeline {orphan} no longer exists; its schedule is paused; remove it with "
            f"pipeline schedule remove {orphan}",
        ],
    )
    shown = await cli("schedule", "show", str(orphan))
    assert (shown.exit_code, shown.stdout, shown.stderr) == (
        4,
        "",
        f"error: pipeline {orphan} not found, but its schedule is still in Prefect, paused; remove "
        f"it with pipeline schedule remove {orphan}\n",
    )
    removed = await cli("schedule", "remove", str(orphan))
    assert (removed.exit_code, removed.stdout) == (0, f"pipeline {orphan}: schedule removed\n")
    assert prefect.slugs() == [f"pipeline-{kept}"]


async def test_a_resume_racing_the_pipeline_s_delete_says_the_pipeline_is_gone(
    cli: Cli,
    prefect: FakePrefect,  # noqa: F811
) -> None:
    """It said "pipeline 27 has no schedule; set one with pipeline schedule set 27"."""
    pipeline_id = await add_pipeline("raced")
    result = await cli("schedule", "set", str(pipeline_id), "--every", "1h", "--paused")
    assert result.exit_code == 0, result.stderr

    async def deleted() -> None:
        prefect.schedules.clear()
        await _remove_rows(pipeline_id)

    prefect.before["read"] = [deleted]
    resumed = await cli("schedule", "resume", str(pipeline_id))
    assert (resumed.exit_code, resumed.stdout, resumed.stderr) == (
        4,
        "",
        f"error: pipeline {pipeline_id} not found\n",
    )


async def test_schedules_set_in_prefect_as_a_rule_or_on_both_days_are_listed_as_such(
    cli: Cli,
    in_prefect: dict[int, DeploymentSchedule],  # noqa: F811
) -> None:
    """An RRule set in Prefect's UI made `pipeline schedules` fail for every pipeline ("unexpected
    TypeError: float() argument must be … not 'NoneType'", exit 70), and so `schedule show`."""
    rule, first_monday = await add_pipeline("rule"), await add_pipeline("first monday")
    in_prefect[rule] = DeploymentSchedule(
        schedule=RRuleSchedule(
            rrule="DTSTART:20200101T000000\nFREQ=WEEKLY;BYDAY=MO", timezone="UTC"
        ),
        active=False,
    )
    in_prefect[first_monday] = DeploymentSchedule(
        schedule=CronSchedule(cron="0 0 1-7 * 1", timezone="UTC", day_or=False), active=False
    )
    shown = await cli("schedule", "show", str(rule))
    assert (shown.exit_code, shown.stdout, shown.stderr) == (
        0,
        f"pipeline {rule}: rrule DTSTART:20200101T000000 FREQ=WEEKLY;BYDAY=MO (UTC; set in "
        "Prefect); next run: paused\n",
        "",
    )
    shown = await cli("schedule", "show", str(first_monday))
    assert (shown.exit_code, shown.stdout, shown.stderr) == (
        0,
        f"pipeline {first_monday}: cron 0 0 1-7 * 1 (UTC, on days matching both its day "
        "fields); next run: paused\n",
        "",
    )
    listed = await cli("schedules")
    assert (listed.exit_code, listed.stdout.splitlines()[3:7]) == (
        0,
        [
            f"│        {rule} │ rrule DTSTART:20200101T000000 FREQ=WEEKLY;BYDAY=MO (UTC; set in      │ "
            "paused         │",
            "│          │ Prefect)                                                             │ "
            "               │",
            f"│        {first_monday} │ cron 0 0 1-7 * 1 (UTC, on days matching both its day "
            "fields)         │ paused         │",
            "╰──────────┴──────────────────────────────────────────────────────────────────────┴"
            "────────────────╯",
        ],
    )
