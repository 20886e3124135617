"""What a 422 says of one field's value, in place of pydantic's generic words ("Input should be a
valid integer", "String should have at most 200 characters"): the rule, and what was sent."""

import json
import math
from typing import Any

from app.echoed import MOST_DIGITS, said_number


def shown(value: Any) -> str:
    """A value as the request sent it, cut short."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 40 else f"{text[:39]}…"


def _number(value: Any) -> str:
    """1,000 for 1000 or "1000"; anything else as sent."""
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 40:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return said_number(value)
    return shown(value)


# pydantic's bounds ("Input should be greater than or equal to 1"): said as the limit and the value
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}
# a whole number like the field takes, for one whose value shows none (true, "abc")
_EXAMPLES = {"record_count": 1000, "interval_seconds": 3600, "page_size": 20, "limit": 100}
_DIGITS_ONLY = "must be written as a whole number without a decimal point or exponent"


def _whole(value: Any) -> float | None:
    """The whole number a JSON float (1000.0, 1e10), or a text of one ("1e3"), stands for."""
    if isinstance(value, str):
        if not value.isascii():  # float() reads "٣" as 3: a page number is typed in ASCII
            return None
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return value
    return None


def _quoted_integer(value: Any) -> bool:
    """Whether a JSON string holds an integer as Python reads one ("5", "-5", "+5", " 5", "5_000"):
    the quotes are what is wrong, not the number."""
    if not isinstance(value, str) or not value.isascii():
        return False
    try:
        int(value)
    except ValueError:
        return False
    return True


def _like(whole: float, example: int) -> int:
    """The client's own number as the example, when it is one a count or an interval can be."""
    return int(whole) if 1 <= whole < 10**MOST_DIGITS else example


def _not_an_integer(field: str, value: Any, *, in_json: bool) -> str:
    """A whole number is wanted: written as one when the value is one written otherwise."""
    example = _EXAMPLES.get(field, 2)
    if in_json and _quoted_integer(value):
        like = _like(int(value), example) if len(value) <= 40 else example
        return f"must be a number without quotes, like {like}; got {shown(value)}"
    if (whole := _whole(value)) is not None:
        return f"{_DIGITS_ONLY}, like {_like(whole, example)}; got {shown(value)}"
    return f"must be a whole number, like {example}; got {shown(value)}"


def _too_many_digits(field: str, value: Any) -> str:
    """A query's number of more than 4,300 digits, which Python will not convert."""
    text = str(value).strip()
    digits = text.lstrip("+-")
    if digits.isascii() and digits.isdigit():
        sign = "negative " if text.startswith("-") else ""
        got = f"a {sign}number of {len(digits):,} digits"
    else:
        got = shown(value)
    return f"must be a whole number in range, like {_EXAMPLES.get(field, 2)}; got {got}"


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def said(error: Any, field: str) -> str | None:
    """One validation problem in plain words, or None to keep pydantic's (or the validator's)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    name = str(error["loc"][-1]) if error["loc"] else field
    if kind == "int_type":  # JSON fields are strict: true is no 1, 1000.0 not 1000
        return _not_an_integer(name, value, in_json=True)
    if kind in ("int_parsing", "int_from_float"):  # a query's or a path's text, or a float
        return _not_an_integer(name, value, in_json=False)
    if kind == "int_parsing_size":
        return _too_many_digits(name, value)
    if (bound := _BOUNDS.get(kind)) and bound[0] in ctx:
        return f"must be {bound[1]} {_number(ctx[bound[0]])}; got {_number(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, not {shown(value)}"
    if kind in ("enum", "literal_error") and "expected" in ctx:  # a status, a download's format
        return f"must be {ctx['expected']}; got {shown(value)}"
    if kind == "string_unicode":  # "\ud800" alone: no character, and no UTF-8 can hold it
        return (
            "must be text without an unpaired surrogate (\\ud800 to \\udfff on its own): write "
            "the character itself, or both halves of its pair"
        )
    if kind == "string_type":
        return f"must be text (in quotes), not {shown(value)}"
    # pydantic's, with their bound (the Idempotency-Key's own refusals of these types have none)
    if kind == "string_too_long" and "max_length" in ctx:
        return f"must be at most {ctx['max_length']:,} characters; got {_length(value):,}"
    if kind == "string_too_short" and "min_length" in ctx:
        if ctx["min_length"] == 1:
            return "must not be empty"
        return f"must be at least {ctx['min_length']:,} characters; got {_length(value):,}"
    return None
