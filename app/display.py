"""How durations read to a person, the same in the dashboard and the CLI."""


def duration(seconds: float | None, *, unknown: str = "—") -> str:
    """0.42 s, 12.3 s, 2 min 05 s, 1 h 02 min; `unknown` when there is none."""
    if seconds is None:
        return unknown
    # rounded first, then the unit chosen: 59.96 s is "1 min 00 s", never "60.0 s"
    if (hundredths := round(seconds, 2)) < 10:
        return f"{hundredths:.2f} s"
    if (tenths := round(seconds, 1)) < 60:
        return f"{tenths:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
