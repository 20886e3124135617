"""How the dashboard shows durations, counts and times."""

from datetime import UTC, datetime, timedelta, timezone

from app.display import duration
from app.web.view import count, when


def test_duration() -> None:
    cases = {
        None: "—",
        0.0: "0.00 s",
        0.004: "0.00 s",
        1.234: "1.23 s",
        9.994: "9.99 s",
        12.34: "12.3 s",
        59.9: "59.9 s",
        60.0: "1 min 00 s",
        83.4: "1 min 23 s",
        3599.4: "59 min 59 s",
        3600.0: "1 h 00 min",
        7384.0: "2 h 03 min",
    }
    assert {seconds: duration(seconds) for seconds in cases} == cases


def test_count_and_when() -> None:
    assert [count(None), count(0), count(999), count(50_000_000)] == ["—", "0", "999", "50,000,000"]
    paris = timezone(timedelta(hours=1))
    assert when(datetime(2026, 11, 25, 10, 30, 5, 999_000, tzinfo=paris)) == (
        "2026-11-25 09:30:05 UTC"
    )
    assert when(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05 UTC"
    assert when(None) == "—"


def test_duration_rounds_before_it_chooses_the_unit() -> None:
    cases = {
        9.994: "9.99 s",
        9.996: "10.0 s",  # not "10.00 s"
        59.94: "59.9 s",
        59.96: "1 min 00 s",  # not "60.0 s"
        119.6: "2 min 00 s",
        3599.6: "1 h 00 min",
    }
    assert {seconds: duration(seconds) for seconds in cases} == cases
