"""An interval schedule's bounds, and the durations `pipeline schedule set --every` takes for one
(3600, 90s, 15m, 1h, 1d, 1h30m): shared by the API and the CLI, which does not import Prefect."""

import re

SHORTEST_INTERVAL, LONGEST_INTERVAL = 10, 366 * 86_400
EVERY_FORMS = "seconds, like 3600, or a duration like 90s, 15m, 1h, 1d or 1h30m"
_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:[0-9]+[dhms])+")
_PART = re.compile(r"([0-9]+)([dhms])")


def _count(digits: str) -> int:
    """A number of units; one too long to be an interval at all counts as past the longest
    (int() refuses more than 4,300 digits)."""
    return int(digits) if len(digits) <= 12 else LONGEST_INTERVAL + 1


def interval_seconds(text: str) -> int:
    """The seconds of an interval typed as seconds or as a duration; a ValueError says what is
    wrong and what is taken, in words for the person who typed it."""
    typed = text.strip().lower()
    if re.fullmatch(r"[0-9]+", typed):
        seconds = _count(typed)
    elif _DURATION.fullmatch(typed):
        seconds = sum(_count(n) * _UNITS[unit] for n, unit in _PART.findall(typed))
    else:
        raise ValueError(f"takes {EVERY_FORMS}; got {text!r}")
    if seconds < SHORTEST_INTERVAL:
        raise ValueError(f"must be at least {SHORTEST_INTERVAL} seconds; got {typed}")
    if seconds > LONGEST_INTERVAL:
        raise ValueError(f"must be at most 366 days ({LONGEST_INTERVAL:,} seconds); got {typed}")
    return seconds
