"""A column name holding NUL, at upload: a 422 naming the column and the fix, nothing kept."""

import gzip

import httpx

from tests.api.test_uploads import GOOD, HEADER, assert_rejected_upload, csv, upload


async def test_a_column_name_holding_nul_is_refused_at_upload(client: httpx.AsyncClient) -> None:
    """It was accepted, and its rows' NUL reject reason ("NUL character in no\\x00te") went into
    the run's error, which PostgreSQL cannot store."""
    await assert_rejected_upload(
        client,
        csv(GOOD + ",x", header=f"{HEADER},no\x00te"),
        "file: line 1: column 8's name 'no\\x00te' holds a NUL character (\\u0000); rename the "
        "column",
    )


async def test_a_first_line_of_nul_bytes_is_refused_in_a_few_words(
    client: httpx.AsyncClient,
) -> None:
    """29 KB of gzip holding 30 MB of NUL bytes: one column named by all of them, echoed whole
    in the 422's message and detail, made a 300 MB answer (the API grew by 0.8 GB; a 200 MB
    sparse file under PIPELINE_INPUT_DIR, a 2 GB answer and 6 GB)."""
    body = gzip.compress(b"\x00" * 30_000_000)
    response = await upload(client, body, "zeros.csv.gz")
    shown = "'" + "\\x00" * 63 + "…'"
    assert (response.status_code, response.json()["message"]) == (
        422,
        f"file: line 1: column 1's name is 30,000,000 characters long ({shown}), more than the "
        "1,000 a name may have; a CSV's first line names its columns: is it the header?",
    )
    assert len(response.content) < 2_000


async def test_long_column_names_are_quoted_cut_short(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(
            "1,a,A,10.5,2,true,x", header=f"id,name,category,value,quantity,is_active,{'y' * 1000}"
        ),
        "file: missing required columns: created_at; the file's columns are 'id', 'name', "
        f"'category', 'value', 'quantity', 'is_active', '{'y' * 63}…'",
    )
    await assert_rejected_upload(
        client,
        csv(GOOD + ",x", header=f"{HEADER},{'z' * 1001}"),
        f"file: line 1: column 8's name is 1,001 characters long ('{'z' * 63}…'), more than the "
        "1,000 a name may have; a CSV's first line names its columns: is it the header?",
    )
