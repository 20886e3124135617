"""Input files at the edges of what the formats allow: time zones, numbers written as decimals,
late JSON keys, byte-order marks, Parquet types, stray quotes, sizes and symlink loops."""

import asyncio
import json
from datetime import datetime, time
from pathlib import Path

import httpx
import polars as pl
import pytest

from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles
from tests.api.test_uploads import (
    GOOD,
    HEADER,
    assert_rejected_upload,
    csv,
    input_dir,
    parquet_bytes,
    pipelines,
    stage_rejects,
    upload,
)
from tests.conftest import SetSetting

__all__ = ["input_dir"]  # the fixture, shared with test_uploads

ROW = {
    "id": 1,
    "name": "a",
    "category": "A",
    "value": 10.0,
    "quantity": 2,
    "is_active": True,
    "created_at": "2026-03-01T12:00:00",
}


def ingested(response: httpx.Response, root: Path) -> pl.DataFrame:
    assert response.status_code == 201, response.text
    assert stage_rejects(response.json(), root) == []
    return pl.read_parquet(RunFiles(root).ingested).sort("id")


async def test_parquet_timestamps_in_a_time_zone_are_read_as_the_instant_in_utc(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """12:00 in Paris was read as 12:00 UTC: its zone was dropped instead of converted."""
    frame = pl.read_csv(csv(GOOD, GOOD.replace("1,", "2,", 1)), try_parse_dates=True)
    zoned = frame.with_columns(
        pl.col("created_at").dt.replace_time_zone("Europe/Paris"),
    )
    response = await upload(client, parquet_bytes(zoned), "data.parquet")
    assert ingested(response, tmp_path / "run")["created_at"].to_list() == [
        datetime(2026, 3, 1, 11),
        datetime(2026, 3, 1, 11),
    ]


async def test_whole_numbers_with_a_decimal_point_or_spaces_are_read_as_in_parquet(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """pandas writes an integer column with a gap as 3.0: read as 3 in Parquet, a reject in CSV."""
    rows = (
        "2.0,b,A, 12.5 ,3.0,true,2026-03-01",
        " 3 ,c,A,10, 4 ,true,2026-03-01",
        "9007199254740993,d,A,10,5,true,2026-03-01",  # past 2**53: exact, not through a float
    )
    response = await upload(client, csv(*rows))
    frame = ingested(response, tmp_path / "run")
    assert frame.select("id", "value", "quantity").rows() == [
        (2, 12.5, 3),
        (3, 10.0, 4),
        (9007199254740993, 10.0, 5),
    ]
    half = await upload(client, csv(GOOD, "2,b,A,10,2.5,true,2026-03-01"))
    assert stage_rejects(half.json(), tmp_path / "half") == [("2", "b", "unparseable quantity")]


async def test_timestamps_to_the_minute_are_iso_8601_too(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    rows = (
        "2,b,A,10,1,true,2026-03-01 10:00",
        "3,c,A,10,1,true,2026-03-01T10:00Z",
        "4,d,A,10,1,true,2026-03-01T10:00+01:00",
    )
    response = await upload(client, csv(GOOD, *rows))
    assert ingested(response, tmp_path / "run")["created_at"].to_list() == [
        datetime(2026, 3, 1, 12),
        datetime(2026, 3, 1, 10),
        datetime(2026, 3, 1, 10),
        datetime(2026, 3, 1, 9),
    ]


async def test_a_json_lines_key_that_first_shows_late_is_a_column_too(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Only the first 10,000 lines were read for the column names: a later key was dropped."""
    lines = [json.dumps({**ROW, "id": n}) for n in range(1, 10_002)]
    lines.append(json.dumps({**ROW, "id": 10_002, "note": "important"}))
    response = await upload(client, "\n".join(lines).encode(), "rows.jsonl")
    frame = ingested(response, tmp_path / "run")
    assert frame.columns == [*HEADER.split(","), "note"]
    assert frame["note"].to_list()[-2:] == [None, "important"]


async def test_json_lines_with_a_utf8_byte_order_mark(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """As Windows PowerShell writes it: was 'line 1: not JSON Lines'."""
    content = b"\xef\xbb\xbf" + "\n".join(json.dumps({**ROW, "id": n}) for n in (1, 2)).encode()
    response = await upload(client, content, "rows.jsonl")
    assert response.json()["record_count"] == 2
    assert ingested(response, tmp_path / "run")["id"].to_list() == [1, 2]


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        (
            "created_at",
            pl.Series([time(12)]),
            "column 'created_at' is of type Time; it must hold timestamps or dates (or text of "
            "them)",
        ),
        (
            "name",
            pl.Series([["a"]]),
            "column 'name' is of type List(String); it must hold text (or text of them)",
        ),
        (
            "value",
            pl.Series([b"10"]),
            "column 'value' is of type Binary; it must hold numbers (or text of them)",
        ),
    ],
    ids=["time", "list", "binary"],
)
async def test_a_parquet_column_of_a_type_that_cannot_hold_its_values_is_refused(
    client: httpx.AsyncClient, column: str, values: pl.Series, message: str
) -> None:
    """Accepted at upload, then the run failed three times on Polars' cast error."""
    frame = pl.read_csv(csv(GOOD), try_parse_dates=True).with_columns(values.alias(column))
    await assert_rejected_upload(client, parquet_bytes(frame), f"file: {message}", "data.parquet")


async def test_a_column_named_like_the_pipeline_s_own_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """__row with a duplicate id crashed ingest; __text_id and reject_reason were dropped."""
    for name in ("__row", "reject_reason"):
        await assert_rejected_upload(
            client,
            csv(GOOD + ",x", header=f"{HEADER},{name}"),
            f"file: column {name!r}: names starting with '__', and reject_reason, are the "
            "pipeline's own; rename it",
        )


async def test_a_stray_quote_names_its_line(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(GOOD, '2,12" pizza,A,10,1,true,2026-03-01'),
        'file: line 3: a " inside a value that is not quoted; quote the value and double the '
        'quote inside it: "12"" pizza"',
    )


async def test_an_uncompressed_file_past_the_input_limit_is_refused(
    client: httpx.AsyncClient, setting: SetSetting, input_dir: Path
) -> None:
    """The limit was applied to decompressed files only."""
    content = csv(GOOD)
    setting("PIPELINE_MAX_INPUT_BYTES", str(len(content) - 1))
    message = (
        f"is more than {len(content) - 1} bytes (PIPELINE_MAX_INPUT_BYTES); "
        "send a smaller file, or raise the limit"
    )
    await assert_rejected_upload(client, content, f"file: {message}")
    (input_dir / "big.csv").write_bytes(content)
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": "big.csv"})
    assert (response.status_code, response.json()["message"]) == (422, f"input_path: {message}")
    setting("PIPELINE_MAX_INPUT_BYTES", str(len(content)))
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": "big.csv"})
    assert response.status_code == 201, response.text


async def test_a_symlink_loop_is_a_422(client: httpx.AsyncClient, input_dir: Path) -> None:
    """Was a 500 in plain text (Python 3.11's Path.resolve raises RuntimeError)."""
    (input_dir / "loop1").symlink_to(input_dir / "loop2")
    (input_dir / "loop2").symlink_to(input_dir / "loop1")
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": "loop1"})
    assert (response.status_code, response.json()["message"]) == (
        422,
        "input_path: cannot read 'loop1' in PIPELINE_INPUT_DIR (a symlink loop); check the name "
        "and that the service's user may read the file",
    )
    assert await pipelines() == 0


async def test_an_idempotency_key_sent_with_another_file_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "upload-2"}
    first = await client.post(
        "/api/pipelines", data={"name": "a"}, files={"file": ("a.csv", csv(GOOD))}, headers=headers
    )
    assert first.status_code == 201
    other_file = csv(GOOD, GOOD.replace("1,", "2,", 1))
    for data, file in (
        ({"name": "a"}, ("a.csv", other_file)),
        ({"name": "b"}, ("a.csv", csv(GOOD))),
    ):
        response = await client.post(
            "/api/pipelines", data=data, files={"file": file}, headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(
            "Idempotency-Key 'upload-2' was first used to create pipeline "
        )
    again = await client.post(
        "/api/pipelines", data={"name": "a"}, files={"file": ("a.csv", csv(GOOD))}, headers=headers
    )
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert await pipelines() == 1


def _multipart(*parts: tuple[bytes, bytes]) -> tuple[bytes, dict[str, str]]:
    """A form of (Content-Disposition, content) parts, as a client other than httpx writes it."""
    body = b"".join(
        b"--b0undary\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + content + b"\r\n"
        for disposition, content in parts
    )
    return body + b"--b0undary--\r\n", {"Content-Type": "multipart/form-data; boundary=b0undary"}


async def test_a_file_name_sent_as_rfc_5987_tells_the_format(client: httpx.AsyncClient) -> None:
    """filename*=UTF-8''… alone was not read: 'cannot tell the format of 'upload''."""
    body, headers = _multipart(
        (b'form-data; name="name"', b"accented"),
        (b"form-data; name=\"file\"; filename*=UTF-8''caf%C3%A9.jsonl", json.dumps(ROW).encode()),
    )
    response = await client.post("/api/pipelines", content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert (response.json()["input_format"], response.json()["record_count"]) == ("jsonl", 1)


async def test_form_text_that_is_not_utf8_is_refused(client: httpx.AsyncClient) -> None:
    """It was stored with U+FFFD in place of what was sent; the JSON route refuses such bytes."""
    body, headers = _multipart(
        (b'form-data; name="name"', "café".encode("latin-1")),
        (b'form-data; name="file"; filename="a.csv"', csv(GOOD)),
    )
    response = await client.post("/api/pipelines", content=body, headers=headers)
    assert (response.status_code, response.json()["message"]) == (
        422,
        "name: not UTF-8 text; send the form as UTF-8",
    )
    assert await pipelines() == 0


async def test_a_parquet_uint64_id_past_int64_is_rejected_with_its_value(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """It was a 'null id' reject, its value lost."""
    frame = pl.read_csv(csv(GOOD, GOOD.replace("1,", "2,", 1)), try_parse_dates=True)
    huge = frame.with_columns(pl.Series("id", [1, 2**63 + 5], dtype=pl.UInt64))
    response = await upload(client, parquet_bytes(huge), "data.parquet")
    assert response.status_code == 201, response.text
    root = tmp_path / "run"
    assert stage_rejects(response.json(), root) == [(2**63 + 5, "first", "unparseable id")]


async def test_one_file_checked_by_requests_at_once(input_dir: Path, tmp_path: Path) -> None:
    """Two requests naming one file (a repeat with its Idempotency-Key) shared the scratch copy's
    name: a 500 (FileNotFoundError) or a false 422."""
    content = b"\xef\xbb\xbf" + "\n".join(json.dumps({**ROW, "id": n}) for n in range(500)).encode()
    (input_dir / "e.jsonl").write_bytes(content)
    scratch = tmp_path / "scratch"
    checked = await asyncio.gather(
        *(asyncio.to_thread(inputs.check_under, "e.jsonl", input_dir, scratch) for _ in range(4))
    )
    assert [c.rows for c in checked] == [500] * 4
    assert list(scratch.iterdir()) == []
