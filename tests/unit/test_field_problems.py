"""What a 422 says of a field's value (app/api/field_problems.py), and what a page echoes of its
address (app/api/control_chars.escaped): whole sentences, each true of what was sent."""

from typing import Any

import pytest

from app.api.control_chars import escaped
from app.api.field_problems import said

WRITTEN = "must be written as a whole number without a decimal point or exponent"


def problem(kind: str, field: str, value: Any, **ctx: Any) -> dict[str, Any]:
    return {"type": kind, "loc": ("body", field), "msg": "pydantic's", "input": value, "ctx": ctx}


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (problem("int_type", "record_count", 1000.0), f"{WRITTEN}, like 1000; got 1000.0"),
        # an example the field cannot take is not given: the field's own is
        (problem("int_type", "record_count", -5.0), f"{WRITTEN}, like 1000; got -5.0"),
        # the quotes are what is wrong, however Python reads the integer in them
        (problem("int_type", "interval_seconds", "-5"), 'must be a number without quotes, like 3600; got "-5"'),
        (problem("int_type", "interval_seconds", "0"), 'must be a number without quotes, like 3600; got "0"'),
        (problem("int_type", "interval_seconds", "+60"), 'must be a number without quotes, like 60; got "+60"'),
        (problem("int_type", "interval_seconds", " 60"), 'must be a number without quotes, like 60; got " 60"'),
        (problem("int_type", "interval_seconds", "6_000"), 'must be a number without quotes, like 6000; got "6_000"'),
        # a whole number too long to hold up as the example: the field's own is
        (problem("int_type", "record_count", 1e20), f"{WRITTEN}, like 1000; got 1e+20"),
        (problem("int_type", "interval_seconds", 1e10), f"{WRITTEN}, like 10000000000; got 10000000000.0"),
        (problem("int_type", "interval_seconds", "0060"), 'must be a number without quotes, like 60; got "0060"'),
        (problem("int_type", "interval_seconds", "9" * 30), f'must be a number without quotes, like 3600; got "{"9" * 30}"'),
        (problem("int_type", "record_count", 1.5), "must be a whole number, like 1000; got 1.5"),
        (problem("int_type", "record_count", float("nan")), "must be a whole number, like 1000; got NaN"),
        (problem("int_type", "record_count", None), "must be a whole number, like 1000; got null"),
        (problem("int_type", "record_count", [1]), "must be a whole number, like 1000; got [1]"),
        (problem("int_parsing", "page", "1e400"), 'must be a whole number, like 2; got "1e400"'),
        (problem("int_parsing", "page", "٣"), 'must be a whole number, like 2; got "٣"'),
        (problem("int_parsing", "page_size", "2e1"), f'{WRITTEN}, like 20; got "2e1"'),
        (problem("int_parsing_size", "page", "-" + "9" * 4400), "must be a whole number in range, like 2; got a negative number of 4,400 digits"),
        (problem("int_parsing_size", "page", "9" * 4400 + "x"), f'must be a whole number in range, like 2; got "{"9" * 38}…'),
        (problem("string_too_long", "name", "é" * 201, max_length=200), "must be at most 200 characters; got 201"),
        (problem("string_too_short", "code", "ab", min_length=3), "must be at least 3 characters; got 2"),
        (problem("string_too_short", "name", "", min_length=1), "must not be empty"),
        (problem("bool_parsing", "tail", "maybe"), 'must be true or false, not "maybe"'),
        (problem("less_than_equal", "page", 1_000_001, le=1_000_000), "must be at most 1,000,000; got 1,000,001"),
    ],
)  # fmt: skip
def test_a_problem_is_said_as_the_rule_and_what_was_sent(
    error: dict[str, Any], message: str
) -> None:
    assert said(error, "body") == message


@pytest.mark.parametrize("kind", ["string_too_long", "string_too_short", "less_than_equal"])
def test_a_refusal_of_ours_without_pydantic_bound_keeps_its_words(kind: str) -> None:
    """The Idempotency-Key's refusals use these types with their own message and no bound."""
    error = {"type": kind, "loc": ("header", "Idempotency-Key"), "msg": "ours", "input": None}
    assert said(error, "Idempotency-Key") is None


def test_what_a_name_refuses_is_echoed_as_its_escape() -> None:
    sent = "a\x00b\x1b[2J\x85c\u202ed\u2066e\u200bf\u2028g\xadh \u200d é\t"
    assert escaped(sent) == (
        "a\\x00b\\x1b[2J\\x85c\\u202ed\\u2066e\\u200bf\\u2028g\\xadh \u200d é\\x09"
    )
