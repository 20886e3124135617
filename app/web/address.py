"""What the pipelines page's address asks for, as a person may have typed it: each parameter once
(the API refuses one given twice; the page took the last and said nothing), and what it echoes
of the address cut short, its control characters escaped."""

from dataclasses import dataclass

from starlette.datastructures import QueryParams

from app.api.control_chars import escaped

MOST_VALUES = 3  # of a parameter given more times, the notice lists the first ones


def shown(text: str) -> str:
    """What was typed, cut short, as a notice shows it: a NUL or a bidi control reaches the
    page as \\x00 or \\u202e, never raw."""
    return escaped(text if len(text) <= 40 else f"{text[:39]}…")


@dataclass(frozen=True)
class Asked:
    """A query parameter: its value (the default when given none, or more than once), and the
    notice saying it was given more than once."""

    value: str
    repeated: str | None = None


def asked(query: QueryParams, name: str, default: str) -> Asked:
    """`name`'s one value; given more than once, the default, and a notice saying so."""
    values = query.getlist(name)
    if len(values) <= 1:
        return Asked(values[0] if values else default)
    listed = ", ".join(f"“{shown(value)}”" for value in values[:MOST_VALUES])
    more = ", …" if len(values) > MOST_VALUES else ""
    notice = f"The address gives {name} {len(values):,} times ({listed}{more}); give it once."
    return Asked(default, notice)
