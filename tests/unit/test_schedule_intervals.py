"""The intervals `pipeline schedule set --every` takes: what users type (1h), in seconds."""

import pytest

from app.schedule_intervals import interval_seconds


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [("10", 10), (" 2H ", 7200), ("1d12h", 129_600), ("366d", 31_622_400), ("0h10s", 10)],
)
def test_an_interval_typed_as_seconds_or_a_duration(typed: str, seconds: int) -> None:
    assert interval_seconds(typed) == seconds


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("9", "must be at least 10 seconds; got 9"),
        ("366d1s", "must be at most 366 days (31,622,400 seconds); got 366d1s"),
        # more digits than int() reads (4,300): still a number too large, not a crash
        ("9" * 5000, f"must be at most 366 days (31,622,400 seconds); got {'9' * 5000}"),
        ("1h 30m", "takes seconds, like 3600, or a duration like 90s, 15m, 1h, 1d or 1h30m; "
         "got '1h 30m'"),
        ("٣", "takes seconds, like 3600, or a duration like 90s, 15m, 1h, 1d or 1h30m; got '٣'"),
    ],
)  # fmt: skip
def test_an_interval_it_cannot_take_says_what_it_takes(typed: str, said: str) -> None:
    with pytest.raises(ValueError) as refused:
        interval_seconds(typed)
    assert str(refused.value) == said
