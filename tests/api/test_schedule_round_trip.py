"""A schedule read back from the API can be sent back as it was read: GET answered
"interval_seconds": 3600.0, and PUT refused that with 422 "must be a whole number". Prefect's side
is a dict of its own schedule objects here (the interval a timedelta, as its client reads it back);
tests/e2e/test_schedules.py sends one back to a real Prefect server."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from app.pipeline import schedules
from tests.support.rows import add_pipeline


@pytest.fixture
def in_prefect(monkeypatch: pytest.MonkeyPatch) -> dict[int, DeploymentSchedule]:
    """The deployment's schedules, by pipeline id."""
    held: dict[int, DeploymentSchedule] = {}

    async def set_schedule(*, pipeline_id: int, schedule: Any, active: bool, **_: Any) -> Any:
        previous = held.get(pipeline_id)
        held[pipeline_id] = DeploymentSchedule(schedule=schedule, active=active)
        if previous is not None:  # replaced in place, as the real one is: the same id
            held[pipeline_id].id = previous.id
        return held[pipeline_id]

    async def read_schedules() -> dict[int, DeploymentSchedule]:
        return dict(held)

    monkeypatch.setattr(schedules, "set_pipeline_schedule", set_schedule)
    monkeypatch.setattr(schedules, "read_pipeline_schedules", read_schedules)
    return held


@pytest.mark.parametrize(
    "sent",
    [
        {"interval_seconds": 3600, "timezone": "Europe/Paris"},
        {"interval_seconds": 366 * 86_400, "active": False},
        {"cron": "0 6 * * 1-5", "timezone": "UTC"},
        {"cron": "0 0 1-7 * 1", "timezone": "UTC", "day_or": False},  # the first Monday
    ],
)
async def test_a_schedule_read_back_is_taken_back_unchanged(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule], sent: dict[str, Any]
) -> None:
    pipeline_id = await add_pipeline("hourly")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    assert (await client.put(path, json=sent)).status_code == 200
    read = await client.get(path)
    assert read.status_code == 200
    expected = {
        "cron": None,
        "interval_seconds": None,
        "timezone": "UTC",
        "day_or": None if "interval_seconds" in sent else True,
        "rrule": None,
        "active": True,
        **sent,
    }
    assert {key: read.json()[key] for key in expected} == expected
    assert type(read.json()["interval_seconds"]) is type(sent.get("interval_seconds"))

    again = await client.put(
        path, content=read.content, headers={"content-type": "application/json"}
    )
    assert (again.status_code, again.json()) == (200, read.json())
    assert (await client.get(path)).json() == read.json()


async def test_a_schedule_prefect_holds_without_a_timezone_reads_as_utc(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """Prefect keeps a schedule's timezone empty when none was given (one set in its UI, or by
    its client) and reads it as UTC; the API said null, which PUT refuses ("timezone: Input
    should be a valid string")."""
    pipeline_id = await add_pipeline("made in Prefect")
    in_prefect[pipeline_id] = DeploymentSchedule(schedule=CronSchedule(cron="0 6 * * *"))
    assert in_prefect[pipeline_id].schedule.timezone is None
    path = f"/api/pipelines/{pipeline_id}/schedule"
    read = (await client.get(path)).json()
    assert (read["cron"], read["timezone"]) == ("0 6 * * *", "UTC")

    again = await client.put(path, json=read)
    assert (again.status_code, again.json()) == (200, read)
    assert in_prefect[pipeline_id].schedule == CronSchedule(cron="0 6 * * *", timezone="UTC")


async def test_a_schedule_sent_back_is_the_same_schedule_in_prefect(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """Its interval to the second, and its anchor: its runs fall when they fell before."""
    pipeline_id = await add_pipeline("daily")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    await client.put(path, json={"interval_seconds": 86_400})
    first = in_prefect[pipeline_id].schedule
    assert isinstance(first, IntervalSchedule)
    read = (await client.get(path)).json()
    assert (read["interval_seconds"], read["anchor_date"]) == (
        86_400,
        first.anchor_date.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    )
    assert (await client.put(path, json=read)).status_code == 200
    assert in_prefect[pipeline_id].schedule == first


async def test_fields_the_schedule_does_not_have_are_still_refused(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """Only the fields GET answers are taken back (and ignored); a misspelt one is a 422."""
    pipeline_id = await add_pipeline("typo")
    response = await client.put(
        f"/api/pipelines/{pipeline_id}/schedule", json={"interval_seconds": 60, "intreval": 60}
    )
    assert (response.status_code, response.json()["message"]) == (
        422,
        "intreval: unknown field; remove it (see /docs for the accepted fields)",
    )
    assert in_prefect == {}


async def test_an_interval_keeps_the_anchor_it_was_sent(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """Without it, each PUT anchored the interval at its own time: a daily schedule sent again
    every hour (a config tool re-applying it) would never have fired."""
    pipeline_id = await add_pipeline("at six")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    sent = {"interval_seconds": 86_400, "anchor_date": "2026-01-01T06:00:00+01:00"}
    set_ = (await client.put(path, json=sent)).json()
    assert set_["anchor_date"] == "2026-01-01T05:00:00Z"
    next_run = datetime.fromisoformat(set_["next_run_at"])
    assert (next_run.time(), (next_run - datetime(2026, 1, 1, 5, tzinfo=UTC)).seconds) == (
        time(5, 0),
        0,
    )
    assert in_prefect[pipeline_id].schedule == IntervalSchedule(
        interval=timedelta(days=1),
        anchor_date=datetime(2026, 1, 1, 5, tzinfo=UTC),
        timezone="UTC",
    )


async def test_an_anchor_needs_an_interval_and_a_timezone(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    pipeline_id = await add_pipeline("anchored")
    cases = {
        '{"cron": "0 6 * * *", "anchor_date": "2026-01-01T06:00:00Z"}': "body: anchor_date goes with interval_seconds, not cron; remove it",
        # pydantic's "Input should have timezone info" gave no example of one
        '{"interval_seconds": 60, "anchor_date": "2026-01-01T06:00:00"}': 'anchor_date: needs its UTC offset, like 2026-01-01T06:00:00Z (UTC) or 2026-01-01T06:00:00+01:00; got "2026-01-01T06:00:00"',
        '{"interval_seconds": 60, "anchor_date": "tomorrow"}': 'anchor_date: must be a date and time with its UTC offset, like 2026-01-01T06:00:00Z (UTC) or 2026-01-01T06:00:00+01:00; got "tomorrow"',
        # pydantic took a number as a Unix time: 20260101 set runs at 11:48:21 from August 1970
        '{"interval_seconds": 60, "anchor_date": 20260101}': "anchor_date: must be a date and time with its UTC offset, like 2026-01-01T06:00:00Z (UTC) or 2026-01-01T06:00:00+01:00, not a number; got 20260101",
        '{"interval_seconds": 60, "anchor_date": "1767240000.5"}': 'anchor_date: must be a date and time with its UTC offset, like 2026-01-01T06:00:00Z (UTC) or 2026-01-01T06:00:00+01:00, not a number; got "1767240000.5"',
        '{"interval_seconds": 60, "anchor_date": true}': "anchor_date: must be a date and time with its UTC offset, like 2026-01-01T06:00:00Z (UTC) or 2026-01-01T06:00:00+01:00; got true",
        # Prefect's scheduler overflowed on it, for every pipeline's schedule
        '{"interval_seconds": 60, "anchor_date": "0001-01-01T00:00:00+05:00"}': "anchor_date: must be between 1900-01-01 and 2200-01-01 (UTC); got 0001-01-01T00:00:00+05:00",
        '{"interval_seconds": 60, "anchor_date": "9999-12-31T23:00:00Z"}': "anchor_date: must be between 1900-01-01 and 2200-01-01 (UTC); got 9999-12-31T23:00:00+00:00",
    }
    for body, message in cases.items():
        response = await client.put(
            f"/api/pipelines/{pipeline_id}/schedule",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert (response.status_code, response.json()["message"]) == (422, message), body
    assert in_prefect == {}


async def test_a_cron_edited_in_prefect_to_match_both_days_keeps_it_when_sent_back(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """GET left out Prefect's day_or: `0 0 1 * 1` set to fire on a 1st that is a Monday became,
    sent back, every 1st and every Monday."""
    pipeline_id = await add_pipeline("first monday")
    both = CronSchedule(cron="0 0 1 * 1", timezone="UTC", day_or=False)
    in_prefect[pipeline_id] = DeploymentSchedule(schedule=both)
    path = f"/api/pipelines/{pipeline_id}/schedule"
    read = (await client.get(path)).json()
    assert (read["cron"], read["day_or"]) == ("0 0 1 * 1", False)
    assert read["next_run_at"] is not None and read["next_run_at"][8:10] == "01"

    assert (await client.put(path, json=read)).status_code == 200
    assert in_prefect[pipeline_id].schedule == both


async def test_day_or_is_refused_beside_an_interval(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    pipeline_id = await add_pipeline("day_or")
    response = await client.put(
        f"/api/pipelines/{pipeline_id}/schedule", json={"interval_seconds": 60, "day_or": False}
    )
    assert (response.status_code, response.json()["message"]) == (
        422,
        "body: day_or goes with cron, not interval_seconds; remove it",
    )
    assert in_prefect == {}


async def test_a_recurrence_rule_set_in_prefect_is_read_and_not_taken_back(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """One set in Prefect's UI: GET said cron and interval_seconds null and nothing else, and the
    CLI's list of every pipeline's schedules failed on it (a TypeError, exit 70)."""
    pipeline_id = await add_pipeline("weekly in Prefect")
    rule = RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=6;BYMINUTE=0", timezone="Europe/Berlin")
    in_prefect[pipeline_id] = DeploymentSchedule(schedule=rule)
    path = f"/api/pipelines/{pipeline_id}/schedule"
    read = (await client.get(path)).json()
    assert {key: read[key] for key in ("cron", "interval_seconds", "day_or", "rrule")} == {
        "cron": None,
        "interval_seconds": None,
        "day_or": None,
        "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=6;BYMINUTE=0",
    }
    assert read["timezone"] == "Europe/Berlin"

    refused = await client.put(path, json=read)
    assert (refused.status_code, refused.json()["message"]) == (
        422,
        "rrule: a recurrence rule is set in Prefect itself, not through this API: send cron or "
        "interval_seconds instead and leave rrule out (or null), or keep editing this schedule in "
        "Prefect",
    )
    assert in_prefect[pipeline_id].schedule == rule


async def test_a_cron_with_spaces_around_it_is_taken_without_them(
    client: httpx.AsyncClient, in_prefect: dict[int, DeploymentSchedule]
) -> None:
    """`"@daily "` (pasted with a space) was a 422 "not a valid cron expression"."""
    pipeline_id = await add_pipeline("pasted")
    path = f"/api/pipelines/{pipeline_id}/schedule"
    for sent, kept in ((" @daily ", "@daily"), ("0 6 * * * ", "0 6 * * *")):
        response = await client.put(path, json={"cron": sent})
        assert (response.status_code, response.json()["cron"]) == (200, kept)
        assert in_prefect[pipeline_id].schedule == CronSchedule(cron=kept, timezone="UTC")
