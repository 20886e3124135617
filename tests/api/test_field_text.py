"""What a 422 says of a pipeline's name and description, and of a schedule's interval (SQLite and
PostgreSQL): control characters went raw into the dashboard's <title>, and the interval's bound
was said without what it means."""

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
    description = "nightly load\r\n\tfrom the warehouse\nsee ß, ☃ and \u2028 too"
    response = await client.post(
        "/api/pipelines", json={"name": "ok ☃", "description": description}
    )
    assert (response.status_code, response.json()["description"]) == (201, description)


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
