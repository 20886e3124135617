"""What the pipelines page makes of its address (SQLite and PostgreSQL): a parameter given more
than once, said in a notice as the API refuses it, and what a notice echoes of the address, its
control characters escaped."""

import httpx
import pytest

from tests.support.html import parse
from tests.support.rows import add_pipeline


def repeated(name: str, listed: str, times: int = 2) -> str:
    return f"The address gives {name} {times} times ({listed}); give it once."


@pytest.mark.parametrize(
    ("query", "notices", "data_query"),
    [
        (
            "page=1&page=2",
            {"repeated-page": (f"{repeated('page', '“1”, “2”')} Showing page 1.", "/?page=1")},
            "page=1",
        ),
        (
            "status=failed&status=created",
            {
                "repeated-status": (
                    f"{repeated('status', '“failed”, “created”')} Showing every pipeline.",
                    "/?page=1",
                )
            },
            "page=1",
        ),
        (
            # each named: a page given 4 times (its first 3 listed), the status kept
            "page=2&status=created&page=x&page=3&page=%00",
            {
                "repeated-page": (
                    f"{repeated('page', '“2”, “x”, “3”, …', 4)} Showing page 1.",
                    "/?page=1&status=created",
                )
            },
            "page=1&status=created",
        ),
        (
            "status=failed&page=2&status=&page=2",
            {
                "repeated-status": (
                    f"{repeated('status', '“failed”, “”')} Showing every pipeline.",
                    "/?page=1",
                ),
                "repeated-page": (f"{repeated('page', '“2”, “2”')} Showing page 1.", "/?page=1"),
            },
            "page=1",
        ),
    ],
    ids=["page", "status", "page-4-times", "both"],
)
async def test_a_parameter_given_twice_shows_the_default_saying_so(
    client: httpx.AsyncClient, query: str, notices: dict[str, tuple[str, str]], data_query: str
) -> None:
    """/?page=1&page=2 showed page 2 and /?status=failed&status=completed the completed ones,
    silently, where the API refuses either: the page now says which it was given twice."""
    for number in range(1, 23):
        await add_pipeline(f"p{number}", minutes=number)
    response = await client.get(f"/?{query}")
    assert response.status_code == 200
    page = parse(response.text)
    shown = {
        notice.attrs["id"]: (notice.text, notice.select("a")[0].attrs["href"])
        for notice in page.select("p", "notice")
        if (notice.attrs.get("id") or "").startswith("repeated-")
    }
    assert shown == notices
    assert not page.has_id("no-such-page")  # a page given twice is not also "no such page"
    listed = page.by_id("pipeline-list")
    assert listed.attrs["data-query"] == data_query
    assert [row[1] for row in listed.rows()][:2] == ["p22", "p21"]  # page 1, every pipeline
    fragment = parse((await client.get(f"/pipelines-list?{query}")).text)
    assert fragment.by_id("pipeline-list").attrs["data-query"] == data_query


async def test_a_value_given_once_shows_no_notice_of_repetition(client: httpx.AsyncClient) -> None:
    await add_pipeline("only")
    response = await client.get("/?page=1&status=created")
    assert "repeated-" not in response.text


@pytest.mark.parametrize(
    ("query", "notice_id", "notice"),
    [
        (
            "page=%00",
            "no-such-page",
            "No page is numbered “\\x00”: pages are numbered from 1 to 1; showing page 1.",
        ),
        (
            "page=%1B%5B2J%C2%85",
            "no-such-page",
            "No page is numbered “\\x1b[2J\\x85”: pages are numbered from 1 to 1; showing page 1.",
        ),
        (
            "page=2%E2%80%AE1",
            "no-such-page",
            "No page is numbered “2\\u202e1”: pages are numbered from 1 to 1; showing page 1.",
        ),
        (
            "status=fai%00led",
            "unknown-status",
            "No status is called “fai\\x00led”; showing every pipeline.",
        ),
        (
            "status=%E2%80%8Bfailed",
            "unknown-status",
            "No status is called “\\u200bfailed”; showing every pipeline.",
        ),
        (
            "page=%00&page=%E2%81%A6",
            "repeated-page",
            "The address gives page 2 times (“\\x00”, “\\u2066”); give it once. Showing page 1.",
        ),
    ],
    ids=["nul", "escape", "bidi", "status-nul", "status-zero-width", "repeated"],
)
async def test_a_control_character_in_the_address_is_shown_escaped(
    client: httpx.AsyncClient, query: str, notice_id: str, notice: str
) -> None:
    """/?page=%00 put a raw NUL into the page's HTML; a bidi override would reorder the notice."""
    await add_pipeline("only")
    response = await client.get(f"/?{query}")
    assert response.status_code == 200
    assert parse(response.text).by_id(notice_id).text == notice
    assert [c for c in response.text if c in "\x00\x1b\x85\u202e\u200b\u2066"] == []


async def test_a_malformed_pipeline_id_is_shown_escaped(client: httpx.AsyncClient) -> None:
    page = await client.get("/pipelines/%00%E2%80%AE" + "9" * 50)
    assert (page.status_code, parse(page.text).select("p", "notice")[0].text) == (
        404,
        f"pipeline \\x00\\u202e{'9' * 37}… not found",
    )
    assert "\x00" not in page.text and "\u202e" not in page.text
    fragment = await client.get("/pipelines/a%00b/progress")
    assert (fragment.status_code, fragment.text) == (404, "pipeline a\\x00b not found")
