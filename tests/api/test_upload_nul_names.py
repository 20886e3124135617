"""A column name holding NUL, at upload: a 422 naming the column and the fix, nothing kept."""

import httpx

from tests.api.test_uploads import GOOD, HEADER, assert_rejected_upload, csv


async def test_a_column_name_holding_nul_is_refused_at_upload(client: httpx.AsyncClient) -> None:
    """It was accepted, and its rows' NUL reject reason ("NUL character in no\\x00te") went into
    the run's error, which PostgreSQL cannot store."""
    await assert_rejected_upload(
        client,
        csv(GOOD + ",x", header=f"{HEADER},no\x00te"),
        "file: line 1: column 8's name 'no\\x00te' holds a NUL character (\\u0000); rename the "
        "column",
    )
