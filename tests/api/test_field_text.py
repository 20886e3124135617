"""What a 422 says of a pipeline's name and description, and of a schedule's interval (SQLite and
PostgreSQL): control characters went raw into the dashboard's <title>, a bidi control reordered
the CLI's table, a name too long was told pydantic's words without its length, and the interval's
bound was said without what it means."""

from typing import Any

import httpx
import pytest

from app.models import Pipeline
from tests.support.rows import add_pipeline, count_rows

NAME_FIX = "remove it (a name is one line of printable text)"
DESCRIPTION_FIX = "remove it (tabs and line breaks are fine)"
GOOD_CSV = b"id,name,category,value,quantity,is_active,created_at\n1,a,A,10,1,true,2026-03-01\n"


def refused(field: str, msg: str) -> dict[str, Any]:
    return {
        "message": f"{field}: {msg}",
        "detail": [{"loc": ["body", field], "msg": msg, "type": "value_error"}],
    }


@pytest.mark.parametrize(
    ("sent", "field", "msg"),
    [
        ({"name": "a\x00b"}, "name", f"holds the control character U+0000 (NUL) at position 2; {NAME_FIX}"),
        ({"name": "night\tly"}, "name", f"holds the control character U+0009 (tab) at position 6; {NAME_FIX}"),
        ({"name": "nightly\n"}, "name", f"holds the control character U+000A (line feed) at position 8; {NAME_FIX}"),
        ({"name": "\x1b[31mred"}, "name", f"holds the control character U+001B (escape) at position 1; {NAME_FIX}"),
        ({"name": "ab\x7f"}, "name", f"holds the control character U+007F (delete) at position 3; {NAME_FIX}"),
        ({"name": "é\x85"}, "name", f"holds the control character U+0085 at position 2; {NAME_FIX}"),
        ({"name": "x", "description": "\x00"}, "description", f"holds the control character U+0000 (NUL) at position 1; {DESCRIPTION_FIX}"),
        ({"name": "x", "description": "one\ntwo\x07"}, "description", f"holds the control character U+0007 at position 8; {DESCRIPTION_FIX}"),
        ({"name": "x", "description": "a\x0cb"}, "description", f"holds the control character U+000C at position 2; {DESCRIPTION_FIX}"),
        ({"name": "x", "description": "\x9f"}, "description", f"holds the control character U+009F at position 1; {DESCRIPTION_FIX}"),
        # bidi controls reordered the CLI's table columns, and can make one name read as another
        ({"name": "bidi\u202ehere"}, "name", f"holds the control character U+202E (right-to-left override) at position 5; {NAME_FIX}"),
        ({"name": "\u200eab"}, "name", f"holds the control character U+200E (left-to-right mark) at position 1; {NAME_FIX}"),
        ({"name": "ab\u200f"}, "name", f"holds the control character U+200F (right-to-left mark) at position 3; {NAME_FIX}"),
        ({"name": "a\u202ab"}, "name", f"holds the control character U+202A (left-to-right embedding) at position 2; {NAME_FIX}"),
        ({"name": "a\u202cb"}, "name", f"holds the control character U+202C (pop directional formatting) at position 2; {NAME_FIX}"),
        ({"name": "a\u2066b"}, "name", f"holds the control character U+2066 (left-to-right isolate) at position 2; {NAME_FIX}"),
        ({"name": "a\u2069b"}, "name", f"holds the control character U+2069 (pop directional isolate) at position 2; {NAME_FIX}"),
        ({"name": "a\u061cb"}, "name", f"holds the control character U+061C (arabic letter mark) at position 2; {NAME_FIX}"),
        # what shows as nothing makes two names look the same; a line separator breaks the line
        ({"name": "night\u200bly"}, "name", f"holds the invisible character U+200B (zero width space) at position 6; {NAME_FIX}"),
        ({"name": "\ufeffnightly"}, "name", f"holds the invisible character U+FEFF (zero width no-break space) at position 1; {NAME_FIX}"),
        ({"name": "night\xadly"}, "name", f"holds the invisible character U+00AD (soft hyphen) at position 6; {NAME_FIX}"),
        ({"name": "a\u2060b"}, "name", f"holds the invisible character U+2060 (word joiner) at position 2; {NAME_FIX}"),
        # a name of a Hangul filler alone looked blank; these looked like the name without them
        ({"name": "\u3164"}, "name", f"holds the invisible character U+3164 (hangul filler) at position 1; {NAME_FIX}"),
        ({"name": "a\u2061"}, "name", f"holds the invisible character U+2061 (function application) at position 2; {NAME_FIX}"),
        ({"name": "\u2800x"}, "name", f"holds the invisible character U+2800 (braille pattern blank) at position 1; {NAME_FIX}"),
        ({"name": "a\u034fb"}, "name", f"holds the invisible character U+034F (combining grapheme joiner) at position 2; {NAME_FIX}"),
        ({"name": "ab\uffff"}, "name", f"holds the invisible character U+FFFF at position 3; {NAME_FIX}"),
        ({"name": "one\u2028two"}, "name", f"holds the line break U+2028 (line separator) at position 4; {NAME_FIX}"),
        ({"name": "x", "description": "see \u202egnp.exe"}, "description", f"holds the control character U+202E (right-to-left override) at position 5; {DESCRIPTION_FIX}"),
        ({"name": "x", "description": "a\u2067b"}, "description", f"holds the control character U+2067 (right-to-left isolate) at position 2; {DESCRIPTION_FIX}"),
    ],
)  # fmt: skip
async def test_control_characters_are_refused_naming_the_first(
    client: httpx.AsyncClient, sent: dict[str, str], field: str, msg: str
) -> None:
    response = await client.post("/api/pipelines", json=sent)
    assert (response.status_code, response.json()) == (422, refused(field, msg))
    upload = await client.post(
        "/api/pipelines", data=sent, files={"file": ("a.csv", GOOD_CSV, "text/csv")}
    )
    assert (upload.status_code, upload.json()) == (422, refused(field, msg))
    assert await count_rows(Pipeline) == 0


async def test_a_description_keeps_its_tabs_and_line_breaks(client: httpx.AsyncClient) -> None:
    """And the bidi marks people writing Arabic or Hebrew type (a name refuses them)."""
    description = (
        "nightly load\r\n\tfrom the warehouse\nsee ß, ☃ and \u2028 too, a\u200bb; "
        "\u05e9\u05dc\u05d5\u05dd 2026\u200f, \u0645\u0631\u062d\u0628\u0627\u061c 5, x\u200ey"
    )
    response = await client.post(
        "/api/pipelines", json={"name": "ok ☃", "description": description}
    )
    assert (response.status_code, response.json()["description"]) == (201, description)


async def test_joiners_that_words_and_emoji_need_are_kept_in_a_name(
    client: httpx.AsyncClient,
) -> None:
    """The zero-width joiner makes one emoji of three; the non-joiner spells Persian words."""
    for name in (
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "שלום nightly",
    ):
        response = await client.post("/api/pipelines", json={"name": name})
        assert (response.status_code, response.json()["name"]) == (201, name)


@pytest.mark.parametrize(
    ("sent", "field", "msg", "kind"),
    [
        ({"name": "n" * 201}, "name", "must be at most 200 characters; got 201", "string_too_long"),
        ({"name": "☃" * 250}, "name", "must be at most 200 characters; got 250", "string_too_long"),
        ({"name": ""}, "name", "must not be empty", "string_too_short"),
        ({"name": "x", "description": "d" * 2001}, "description", "must be at most 2,000 characters; got 2,001", "string_too_long"),
        ({"name": "x", "input_path": "a" * 1001}, "input_path", "must be at most 1,000 characters; got 1,001", "string_too_long"),
        ({"name": "x", "input_path": ""}, "input_path", "must not be empty", "string_too_short"),
    ],
)  # fmt: skip
async def test_a_text_too_long_or_empty_is_told_its_bound_and_length(
    client: httpx.AsyncClient, sent: dict[str, str], field: str, msg: str, kind: str
) -> None:
    """pydantic said "String should have at most 200 characters", without what was sent."""
    response = await client.post("/api/pipelines", json=sent)
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": f"{field}: {msg}",
            "detail": [{"loc": ["body", field], "msg": msg, "type": kind}],
        },
    )
    if field != "input_path":  # the upload form has no input_path: its file is the input
        upload = await client.post(
            "/api/pipelines", data=sent, files={"file": ("a.csv", GOOD_CSV, "text/csv")}
        )
        assert (upload.status_code, upload.json()["message"]) == (422, f"{field}: {msg}")
    assert await count_rows(Pipeline) == 0


@pytest.mark.parametrize(
    ("interval", "msg", "kind"),
    [
        ("31622401", "must be at most 31,622,400 (366 days); got 31,622,401", "value_error"),
        ("9" * 18, f"must be at most 31,622,400 (366 days); got {10**18 - 1:,}", "value_error"),
        # past 18 digits the number is said by its length, as record_count's is
        ("1" + "0" * 18, "must be at most 31,622,400 (366 days); got a number of 19 digits", "value_error"),
        ("9" * 4300, "must be at most 31,622,400 (366 days); got a number of 4,300 digits", "value_error"),
        ("-" + "9" * 4300, "must be at least 10; got a negative number of 4,300 digits", "greater_than_equal"),
        ("-" + "9" * 18, f"must be at least 10; got -{10**18 - 1:,}", "greater_than_equal"),
        ("9", "must be at least 10; got 9", "greater_than_equal"),
    ],
    ids=["one-past", "18-digits", "19-digits", "4300-digits", "-4300-digits", "-18-digits", "9"],
)  # fmt: skip
async def test_an_interval_out_of_bounds_is_told_the_bound(
    client: httpx.AsyncClient, interval: str, msg: str, kind: str
) -> None:
    pipeline_id = await add_pipeline("p")
    response = await client.put(
        f"/api/pipelines/{pipeline_id}/schedule",
        content=f'{{"interval_seconds": {interval}}}',
        headers={"content-type": "application/json"},
    )
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": f"interval_seconds: {msg}",
            "detail": [{"loc": ["body", "interval_seconds"], "msg": msg, "type": kind}],
        },
    )
