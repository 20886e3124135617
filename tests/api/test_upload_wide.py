"""Whole-file problems found by a fuzz review, through the API: a file with more columns than
PIPELINE_MAX_INPUT_COLUMNS (it was accepted, and its run held a worker for minutes), CSV lines
ending in a lone CR, and an input_path whose format its name does not tell."""

from pathlib import Path

import httpx

from tests.api.test_uploads import GOOD, HEADER, assert_rejected_upload, input_dir, pipelines

__all__ = ["input_dir"]  # the fixture, shared with test_uploads

TOO_WIDE = (
    "the file has 501 columns, more than the 500 a run reads (PIPELINE_MAX_INPUT_COLUMNS); "
    "keep the 7 required columns and only the extra ones the results need"
)


def _wide(extra: int) -> bytes:
    header = HEADER + "".join(f",c{i}" for i in range(extra))
    return f"{header}\n{GOOD}{',x' * extra}\n".encode()


async def test_an_upload_at_the_column_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/pipelines", data={"name": "wide"}, files={"file": ("wide.csv", _wide(493))}
    )
    assert response.status_code == 201, response.text
    assert response.json()["record_count"] == 1


async def test_an_upload_past_the_column_limit_is_refused(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(client, _wide(494), f"file: {TOO_WIDE}")


async def test_an_input_path_past_the_column_limit_is_refused(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    (input_dir / "wide.csv").write_bytes(_wide(494))
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": "wide.csv"})
    assert (response.status_code, response.json()["message"]) == (422, f"input_path: {TOO_WIDE}")
    assert await pipelines() == 0


async def test_an_upload_whose_lines_end_in_a_lone_cr_is_told_so(
    client: httpx.AsyncClient,
) -> None:
    """It was 'not a readable csv file (found more fields than defined in 'Schema')'."""
    content = f"{HEADER}\n{GOOD}\r2,b,B,30,2,false,2026-01-02\r".encode()
    await assert_rejected_upload(
        client,
        content,
        "file: line 2: ends in a lone CR (old Mac line endings), which is no line break here; "
        "save the file with LF or CRLF line endings",
    )


async def test_an_input_path_of_unknown_format_is_told_to_rename_it(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    """It was told to 'send format=csv|jsonl|parquet', which the JSON body refuses."""
    (input_dir / "orders.txt").write_text(f"{HEADER}\n{GOOD}\n")
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": "orders.txt"})
    assert (response.status_code, response.json()["message"]) == (
        422,
        "input_path: cannot tell the format of 'orders.txt': rename the file to end in .csv, "
        ".jsonl or .parquet (optionally .gz, .bz2 or .xz)",
    )
    assert await pipelines() == 0
