"""Pipelines whose input is a file: multipart uploads and input_path under PIPELINE_INPUT_DIR.

Whole-file problems are a 422 naming what is wrong and where; row-level problems are accepted
at upload and end up in the rejects file when the stages read the stored file.
"""

import bz2
import gzip
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from sqlalchemy import func, select

from app import db
from app.config import get_settings
from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline import generator, work
from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles, uploads_dir
from app.pipeline.work import InputSource
from tests.conftest import SetSetting

HEADER = "id,name,category,value,quantity,is_active,created_at"
GOOD = "1,first,A,10.5,2,true,2026-03-01 12:00:00"


def csv(*rows: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *rows, ""]).encode()


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


async def upload(
    client: httpx.AsyncClient, content: bytes, filename: str = "data.csv", **fields: str
) -> httpx.Response:
    return await client.post(
        "/api/pipelines",
        data={"name": "upload", **fields},
        files={"file": (filename, content, "application/octet-stream")},
    )


async def pipelines() -> int:
    async with get_sessionmaker()() as session:
        return int((await session.execute(select(func.count()).select_from(Pipeline))).scalar_one())


def stored_bytes(path: Path) -> bytes:
    return path.read_bytes()


def leftover_uploads() -> list[Path]:
    root = uploads_dir()
    return sorted(root.iterdir()) if root.exists() else []


@pytest.fixture
async def input_dir(
    tmp_path: Path, setting: SetSetting, client: httpx.AsyncClient
) -> AsyncIterator[Path]:
    root = tmp_path / "inputs"
    root.mkdir()
    setting("PIPELINE_INPUT_DIR", str(root))
    yield root


async def assert_rejected_upload(
    client: httpx.AsyncClient, content: bytes, message: str, filename: str = "data.csv"
) -> None:
    before = leftover_uploads()
    response = await upload(client, content, filename)
    assert response.status_code == 422, response.text
    assert response.json()["message"] == message
    assert await pipelines() == 0
    assert leftover_uploads() == before  # nothing of a refused upload is kept


def stage_rejects(pipeline: dict[str, Any], root: Path) -> list[tuple[Any, ...]]:
    """Run generate + ingest (the stage code the tasks call) on the stored input: the rejects."""
    files = RunFiles(root)
    source = InputSource(Path(pipeline["input_path"]), pipeline["input_format"])
    work.generate(files, record_count=0, seed=1, batch_rows=10, source=source)
    work.ingest(files)
    return pl.read_parquet(files.rejects).select("id", "name", "reject_reason").rows()


# --------------------------------------------------------------------------- accepted uploads


async def test_csv_upload_creates_a_pipeline_reading_the_file(client: httpx.AsyncClient) -> None:
    content = csv(GOOD, "2,Zoë 日本 🚀,B,20,3,false,2026-03-02 00:00:00", header=HEADER)
    response = await upload(client, content, "orders.csv", description="from a file")
    assert response.status_code == 201, response.text
    body = response.json()
    assert {k: body[k] for k in ("name", "description", "record_count", "input_format")} == {
        "name": "upload",
        "description": "from a file",
        "record_count": 2,
        "input_format": "csv",
    }
    stored = Path(body["input_path"])
    assert stored.parent.parent == uploads_dir()
    assert (stored.name, stored_bytes(stored)) == ("input.csv", content)
    assert body["status"] == "created"
    assert (await client.get(f"/api/pipelines/{body['id']}")).json() == body


async def test_jsonl_upload(client: httpx.AsyncClient, tmp_path: Path) -> None:
    lines = [
        '{"id": 1, "name": "a", "category": "A", "value": 10, "quantity": 1, '
        '"is_active": true, "created_at": "2026-03-01T12:00:00", "note": {"k": 1}}',
        '{"id": 2, "name": "b", "category": "C", "value": "12.5", "quantity": "4", '
        '"is_active": false, "created_at": "2026-03-01 13:00:00"}',
    ]
    response = await upload(client, "\n".join(lines).encode(), "rows.jsonl")
    assert response.status_code == 201, response.text
    assert (response.json()["record_count"], response.json()["input_format"]) == (2, "jsonl")
    assert stage_rejects(response.json(), tmp_path / "run") == []
    ingested = pl.read_parquet(RunFiles(tmp_path / "run").ingested)
    assert ingested.select("id", "value", "quantity", "is_active", "note").rows() == [
        (1, 10.0, 1, True, '{"k": 1}'),
        (2, 12.5, 4, False, None),
    ]


async def test_parquet_upload_keeps_extra_columns(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    frame = pl.read_csv(csv(GOOD, "2,b,D,999,100,false,2026-03-02 00:00:00")).with_columns(
        pl.lit("x").alias("extra")
    )
    response = await upload(client, parquet_bytes(frame), "data.parquet")
    assert response.status_code == 201, response.text
    assert (response.json()["record_count"], response.json()["input_format"]) == (2, "parquet")
    assert stage_rejects(response.json(), tmp_path / "run") == []
    ingested = pl.read_parquet(RunFiles(tmp_path / "run").ingested)
    assert ingested.columns == [*HEADER.split(","), "extra"]
    assert ingested["extra"].to_list() == ["x", "x"]


async def test_large_upload_arrives_intact(client: httpx.AsyncClient) -> None:
    content = generator.generate_batch(1, 60_000, seed=5).write_csv().encode()
    assert len(content) > 3_000_000
    response = await upload(client, content, "big.csv")
    assert response.status_code == 201, response.text
    assert response.json()["record_count"] == 60_000
    assert stored_bytes(Path(response.json()["input_path"])) == content


async def test_gzip_upload_is_stored_decompressed(client: httpx.AsyncClient) -> None:
    content = csv(GOOD)
    response = await upload(client, gzip.compress(content), "data.csv.gz")
    assert response.status_code == 201, response.text
    assert stored_bytes(Path(response.json()["input_path"])) == content


async def test_format_field_overrides_the_file_name(client: httpx.AsyncClient) -> None:
    response = await upload(client, csv(GOOD), "export.txt", format="csv")
    assert response.status_code == 201, response.text
    assert response.json()["input_format"] == "csv"


async def test_upload_with_trigger_and_prefect_down_keeps_nothing(
    client: httpx.AsyncClient,
) -> None:
    before = leftover_uploads()
    response = await upload(client, csv(GOOD), trigger="true")
    assert response.status_code == 503
    assert await pipelines() == 0
    assert leftover_uploads() == before


async def test_upload_idempotency_key_returns_the_same_pipeline(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "upload-1"}
    before = leftover_uploads()
    first = await client.post(
        "/api/pipelines", data={"name": "a"}, files={"file": ("a.csv", csv(GOOD))}, headers=headers
    )
    second = await client.post(
        "/api/pipelines", data={"name": "a"}, files={"file": ("a.csv", csv(GOOD))}, headers=headers
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["id"] == first.json()["id"]
    assert set(leftover_uploads()) - set(before) == {Path(first.json()["input_path"]).parent}


async def test_an_upload_repeated_with_its_key_is_not_checked_again(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    """A repeat is answered from its key (its fields and file digest compared) before the file
    is unpacked and checked: a check that would now refuse it does not turn it into a 422."""
    headers = {"Idempotency-Key": "upload-again"}
    content = gzip.compress(csv(GOOD) + b"\n" * 10_000)

    async def send(data: bytes, name: str = "a") -> httpx.Response:
        files = {"file": ("a.csv.gz", data)}
        return await client.post(
            "/api/pipelines", data={"name": name}, files=files, headers=headers
        )

    first = await send(content)
    assert first.status_code == 201, first.text
    before = leftover_uploads()
    setting("PIPELINE_MAX_INPUT_BYTES", "1000")  # the file unpacks to more now
    again = await send(content)
    assert (again.status_code, again.json()) == (201, first.json())
    reused = (
        "Idempotency-Key 'upload-again' was first used to create pipeline 1 ('a') with a "
        "different request; send a new key for a new request, or repeat the first one exactly"
    )
    for other in (await send(content, name="b"), await send(gzip.compress(csv(GOOD)))):
        assert (other.status_code, other.json()["message"]) == (422, reused)
    assert leftover_uploads() == before  # the repeats' copies are gone
    headers["Idempotency-Key"] = "upload-new"  # a new key: the file is checked
    assert (await send(content)).json()["message"] == (
        "file: decompresses to more than 1,000 bytes (PIPELINE_MAX_INPUT_BYTES); "
        "send a smaller file, or raise the limit"
    )
    assert await pipelines() == 1


# --------------------------------------------------------------------------- whole-file problems


async def test_empty_file(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(client, b"", "file: the file is empty")


async def test_header_only(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(client, csv(), "file: the file has no records, only a header")


async def test_wrong_delimiter(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(GOOD.replace(",", ";"), header=HEADER.replace(",", ";")),
        "file: line 1: columns are separated by ';', not ','; save the CSV comma-separated",
    )


async def test_missing_required_columns(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv("1,a,A,10,true", header="id,name,category,value,is_active"),
        "file: missing required columns: quantity, created_at; the file's columns are 'id', "
        "'name', 'category', 'value', 'is_active'",
    )


async def test_columns_named_in_another_case_are_pointed_out(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(
            "1,a,A,10,2,true,2024-01-01",
            header="ID,name,category,Value ,quantity,is_active,created_at",
        ),
        "file: missing required columns: id, value; the file has 'ID' for 'id', 'Value ' for "
        "'value' (names are exact: lowercase, no spaces)",
    )


async def test_a_repeated_column_is_refused(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv("1,a,A,10,2,true,2024-01-01,5", header=HEADER + ",id"),
        "file: line 1: the header names id more than once",
    )


async def test_utf16_text_is_refused_with_its_encoding(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(GOOD).decode().encode("utf-16"),
        "file: the file is UTF-16 text; save it as UTF-8",
    )


async def test_parquet_sent_as_csv(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        parquet_bytes(pl.read_csv(csv(GOOD))),
        "file: the content is Parquet, not csv; send it as format=parquet",
    )


async def test_csv_sent_as_parquet(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client, csv(GOOD), "file: not a Parquet file (it does not start with PAR1)", "d.parquet"
    )


async def test_json_array_sent_as_json_lines(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        b'[{"id": 1}]\n',
        'file: line 1: a JSON array; JSON Lines has one JSON object per line, like {"id": 1}',
        "rows.jsonl",
    )


@pytest.mark.parametrize(
    ("content", "message", "filename"),
    [
        (
            b"\n\n" + csv(GOOD.replace(",", ";"), header=HEADER.replace(",", ";")),
            "file: line 3: columns are separated by ';', not ','; save the CSV comma-separated",
            "data.csv",
        ),
        (
            b"\r\n" + csv("1,a,A,10,2,true,2024-01-01,5", header=HEADER + ",id"),
            "file: line 2: the header names id more than once",
            "data.csv",
        ),
        (
            b'\n  \n[{"id": 1}]\n',
            'file: line 3: a JSON array; JSON Lines has one JSON object per line, like {"id": 1}',
            "rows.jsonl",
        ),
    ],
    ids=["delimiter", "repeated", "jsonl"],
)
async def test_a_header_problem_names_the_header_s_line_after_empty_lines(
    client: httpx.AsyncClient, content: bytes, message: str, filename: str
) -> None:
    """The readers skip the empty lines before a header (and a JSON Lines file's blank lines):
    the message said "line 1" of a file whose line 1 is empty."""
    await assert_rejected_upload(client, content, message, filename)


async def test_malformed_json_line(client: httpx.AsyncClient) -> None:
    first = (
        '{"id": 1, "name": "a", "category": "A", "value": 10, "quantity": 1, '
        '"is_active": true, "created_at": "2026-03-01 12:00:00"}'
    )
    await assert_rejected_upload(
        client,
        f'{first}\n{{"id": 2, "name": }}\n'.encode(),
        "file: line 2: not valid JSON (Expecting value at character 19)",
        "rows.jsonl",
    )


async def test_ragged_csv_line(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(GOOD, GOOD.replace("first", "a,b")),
        "file: line 3: 8 fields where the header has 7; quote values that contain commas",
    )


async def test_not_utf8(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(GOOD).replace(b"first", "café".encode("latin-1")),
        "file: line 2: not UTF-8 text; save the file as UTF-8",
    )
    # in the header: Polars read it as 'caf\ufffd', a 201, and the run failed on it
    await assert_rejected_upload(
        client,
        csv(GOOD + ",x", header=HEADER + ",café").replace("é".encode(), b"\xe9"),
        "file: line 1: not UTF-8 text; save the file as UTF-8",
    )
    await assert_rejected_upload(
        client,
        csv(GOOD, header=HEADER.replace("name", "n\xe9me")).replace("é".encode(), b"\xe9"),
        "file: line 1: not UTF-8 text; save the file as UTF-8",
    )


async def test_truncated_gzip(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        gzip.compress(csv(GOOD) * 50)[:40],
        "file: cannot decompress gzip: Compressed file ended before the end-of-stream marker "
        "was reached",
        "data.csv.gz",
    )


async def test_a_small_archive_cannot_unpack_past_the_input_limit(
    client: httpx.AsyncClient, setting: SetSetting, input_dir: Path
) -> None:
    setting("PIPELINE_MAX_INPUT_BYTES", "1000000")
    bomb = bz2.compress(csv(GOOD) + b"\n" * 2_000_000)  # 2 MB of blank lines in 200-odd bytes
    message = (
        "decompresses to more than 1,000,000 bytes (PIPELINE_MAX_INPUT_BYTES); "
        "send a smaller file, or raise the limit"
    )
    await assert_rejected_upload(client, bomb, f"file: {message}", "data.csv.bz2")
    (input_dir / "bomb.csv.bz2").write_bytes(bomb)
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": "bomb.csv.bz2"})
    assert (response.status_code, response.json()["message"]) == (422, f"input_path: {message}")
    assert await pipelines() == 0
    assert list((get_settings().data_dir / "tmp").iterdir()) == []  # no unpacked copy left
    # at the limit it is accepted: blank lines are not records
    setting("PIPELINE_MAX_INPUT_BYTES", str(len(csv(GOOD)) + 2_000_000))
    response = await upload(client, bomb, "data.csv.bz2")
    assert (response.status_code, response.json()["record_count"]) == (201, 1), response.text


async def test_unsupported_compression(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        b"\x28\xb5\x2f\xfd" + b"\x00" * 20,
        "file: is zstd-compressed, which is not supported; "
        "send it uncompressed or gzip/bz2/xz-compressed",
        "data.csv.zst",
    )


async def test_unknown_format(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv(GOOD),
        "file: cannot tell the format of 'data.txt': name it .csv, .jsonl or .parquet "
        "(optionally .gz, .bz2 or .xz compressed), or send format=csv|jsonl|parquet",
        "data.txt",
    )


async def test_form_without_a_file(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/pipelines", files={"name": (None, "x")})
    assert response.status_code == 422
    assert response.json()["message"] == "file: send the input file as the form field 'file'"


async def test_form_fields_are_validated_like_json(client: httpx.AsyncClient) -> None:
    cases = {
        (("description", "d"),): "name: Field required",
        (("name", "  "),): "name: must not be blank; give the pipeline a name",
        (("name", "x"), ("colour", "red")): (
            "colour: unknown field; remove it (see /docs for the accepted fields)"
        ),
        (
            ("name", "x"),
            ("format", "xlsx"),
        ): "format: must be 'csv', 'jsonl' or 'parquet'; got \"xlsx\"",
    }
    before = leftover_uploads()
    for fields, message in cases.items():
        response = await client.post(
            "/api/pipelines", data=dict(fields), files={"file": ("a.csv", csv(GOOD))}
        )
        assert response.status_code == 422, fields
        assert response.json()["message"] == message
    assert await pipelines() == 0
    assert leftover_uploads() == before


async def test_upload_over_the_size_limit_is_a_413(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    setting("PIPELINE_MAX_UPLOAD_BYTES", "100")
    before = leftover_uploads()
    response = await upload(client, csv(GOOD, GOOD, GOOD))
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "file: larger than 100 bytes (PIPELINE_MAX_UPLOAD_BYTES); "
        "send a smaller file or name a file under PIPELINE_INPUT_DIR"
    )
    assert leftover_uploads() == before
    # JSON bodies keep their own, smaller limit
    setting("PIPELINE_MAX_BODY_BYTES", "10")
    response = await client.post("/api/pipelines", json={"name": "a long enough name"})
    assert response.status_code == 413
    assert "PIPELINE_MAX_BODY_BYTES" in response.json()["detail"]


# --------------------------------------------------------------------------- row-level problems


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2,b,A,abc,1,true,2026-03-01", "unparseable value"),
        ("2,b,A,10,many,true,2026-03-01", "unparseable quantity"),
        ("2,b,A,1000.5,1,true,2026-03-01", "value out of range [10, 1000]"),
        ("2,b,A,10,0,true,2026-03-01", "quantity out of range [1, 100]"),
        ("2,b,Z,10,1,true,2026-03-01", "unknown category (must be A, B, C or D)"),
        ("1,b,A,10,1,true,2026-03-01", "duplicate id"),
        ("2,b,A,10,1,maybe,2026-03-01", "unparseable is_active (true or false)"),
        (
            "2,b,A,10,1,true,01/03/2026",
            "unparseable created_at (ISO 8601, such as 2026-03-01T10:00:00Z)",
        ),
    ],
    ids=[
        "unparseable-number",
        "unparseable-quantity",
        "value-range",
        "quantity-range",
        "category",
        "duplicate-id",
        "unparseable-is-active",
        "unparseable-created-at",
    ],
)
async def test_bad_row_goes_to_rejects(
    client: httpx.AsyncClient, tmp_path: Path, row: str, reason: str
) -> None:
    response = await upload(client, csv(GOOD, row))
    assert response.status_code == 201, response.text
    assert stage_rejects(response.json(), tmp_path / "run") == [(row[0], "b", reason)]


async def test_rejects_show_the_values_as_they_were_sent(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Not the nulls the casts made of them: the user can find the row and see what was wrong."""
    response = await upload(
        client, csv(GOOD, "x,b,A,10,1,true,2026-03-01", "3,c,A,1 000.50,1,true,2026-03-01")
    )
    run = tmp_path / "run"
    assert stage_rejects(response.json(), run) == [
        ("x", "b", "unparseable id"),
        ("3", "c", "unparseable value"),
    ]
    assert pl.read_parquet(RunFiles(run).rejects)["value"].to_list() == ["10", "1 000.50"]


async def test_timestamps_with_an_offset_are_read_as_utc(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A file's timestamps may carry Z or an offset, some rows and not others."""
    rows = ("1,a,A,10,1,true,2026-03-01T10:00:00Z", "2,b,A,10,1,true,2026-03-01 10:00:00+02:00")
    response = await upload(client, csv(GOOD.replace("1,", "3,", 1), *rows))
    assert response.status_code == 201, response.text
    files = RunFiles(tmp_path / "run")
    assert stage_rejects(response.json(), tmp_path / "run") == []
    assert pl.read_parquet(files.ingested).sort("id")["created_at"].to_list() == [
        datetime(2026, 3, 1, 10),
        datetime(2026, 3, 1, 8),
        datetime(2026, 3, 1, 12),
    ]


async def test_null_id_goes_to_rejects(client: httpx.AsyncClient, tmp_path: Path) -> None:
    response = await upload(client, csv(GOOD, ",b,A,10,1,true,2026-03-01"))
    assert stage_rejects(response.json(), tmp_path / "run") == [(None, "b", "null id")]


async def test_every_row_rejected_fails_ingest_with_the_reasons(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    response = await upload(
        client, csv("1,a,Z,10,1,true,2026-03-01", "2,b,Z,10,1,true,2026-03-01", ",c,A,10,1,,")
    )
    files = RunFiles(tmp_path / "run")
    source = InputSource(Path(response.json()["input_path"]), "csv")
    assert work.generate(files, record_count=0, seed=1, batch_rows=10, source=source) == (
        work.StageOutput(3, 3)
    )
    with pytest.raises(work.RecordsRejectedError) as failure:
        work.ingest(files)
    assert str(failure.value) == (
        "all 3 input records were rejected (unknown category (must be A, B, C or D): 2, null id: 1); "
        "the run's rejects file lists each with its reject_reason"
    )
    assert failure.value.counts == work.StageOutput(3, 0, 3)


# --------------------------------------------------------------------------- input_path


async def test_input_path_under_the_input_dir(client: httpx.AsyncClient, input_dir: Path) -> None:
    (input_dir / "daily").mkdir()
    (input_dir / "daily" / "orders.csv.gz").write_bytes(
        gzip.compress(csv(GOOD, GOOD.replace("1,", "2,", 1)))
    )
    response = await client.post(
        "/api/pipelines", json={"name": "daily", "input_path": "daily/orders.csv.gz"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["record_count"], body["input_format"], body["input_path"]) == (
        2,
        "csv",
        "daily/orders.csv.gz",  # as given: the create takes it back (test_input_path_round_trip)
    )


async def test_input_path_problems(
    client: httpx.AsyncClient, input_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_bytes(csv(GOOD))
    (input_dir / "link.csv").symlink_to(secret)
    (input_dir / "bad.csv").write_bytes(csv("1,a", header="id,name"))
    long = "x" * 300 + ".csv"  # the system refuses the name (ENAMETOOLONG): was a 500
    cases = {
        long: f"input_path: cannot read {long!r} in PIPELINE_INPUT_DIR (File name too long); "
        "check the name and that the service's user may read the file",
        "../secret.csv": "input_path: '../secret.csv' is outside PIPELINE_INPUT_DIR",
        "link.csv": "input_path: 'link.csv' is outside PIPELINE_INPUT_DIR",
        str(secret): f"input_path: must be relative to PIPELINE_INPUT_DIR; got '{secret}'",
        "nope.csv": "input_path: no file 'nope.csv' in PIPELINE_INPUT_DIR",
        "bad.csv": "input_path: missing required columns: category, value, quantity, "
        "is_active, created_at; the file's columns are 'id', 'name'",
    }
    for path, message in cases.items():
        response = await client.post("/api/pipelines", json={"name": "x", "input_path": path})
        assert response.status_code == 422, path
        assert response.json()["message"] == message
    response = await client.post(
        "/api/pipelines", json={"name": "x", "input_path": "bad.csv", "record_count": 5}
    )
    assert response.json()["message"] == (
        "record_count: leave it out with input_path; the file's rows are the records"
    )
    assert await pipelines() == 0


async def test_a_create_repeated_with_its_key_finds_its_pipeline_though_the_file_is_gone(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    """The key is looked up before the file is checked; its request is still compared."""
    (input_dir / "daily.csv").write_bytes(csv(GOOD))
    headers = {"Idempotency-Key": "daily-1"}
    request = {"name": "daily", "input_path": "daily.csv"}
    first = await client.post("/api/pipelines", json=request, headers=headers)
    assert first.status_code == 201, first.text
    (input_dir / "daily.csv").unlink()
    again = await client.post("/api/pipelines", json=request, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    other = await client.post("/api/pipelines", json={**request, "name": "other"}, headers=headers)
    assert (other.status_code, other.json()["message"]) == (
        422,
        "Idempotency-Key 'daily-1' was first used to create pipeline 1 ('daily') with a "
        "different request; send a new key for a new request, or repeat the first one exactly",
    )
    new_key = await client.post(
        "/api/pipelines", json=request, headers={"Idempotency-Key": "daily-2"}
    )
    assert (new_key.status_code, new_key.json()["message"]) == (
        422,
        "input_path: no file 'daily.csv' in PIPELINE_INPUT_DIR",
    )
    assert await pipelines() == 1


async def test_an_input_file_replaced_since_is_checked_again_by_its_run(
    client: httpx.AsyncClient, input_dir: Path, tmp_path: Path
) -> None:
    """A file under PIPELINE_INPUT_DIR can change between runs (a scheduled pipeline)."""
    (input_dir / "daily.csv").write_bytes(csv(GOOD))
    response = await client.post("/api/pipelines", json={"name": "d", "input_path": "daily.csv"})
    source = InputSource(input_dir / response.json()["input_path"], "csv")
    for content, message in (
        (csv(), "input_path: the file has no records, only a header"),
        (
            csv("1,a", header="id,name"),
            "input_path: missing required columns: category, value, "
            "quantity, is_active, created_at; the file's columns are 'id', 'name'",
        ),
        (b"", "input_path: the file is empty"),
    ):
        (input_dir / "daily.csv").write_bytes(content)
        with pytest.raises(inputs.InputError) as refused:
            work.generate(
                RunFiles(tmp_path / "run"), record_count=0, seed=1, batch_rows=10, source=source
            )
        assert str(refused.value) == message


async def test_input_path_without_an_input_dir(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": "a.csv"})
    assert response.status_code == 422
    assert response.json()["message"] == (
        "input_path: reading files from the server is off: set PIPELINE_INPUT_DIR, "
        "or upload the file"
    )


async def test_no_database_connection_is_held_while_a_keyed_input_is_checked(
    client: httpx.AsyncClient, input_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's lookup left its transaction open through the whole check of a new key's file
    (minutes for a large one): a few uploads at once drained the connection pool."""
    (input_dir / "daily.csv").write_bytes(csv(GOOD))
    held: list[int] = []
    check_under = inputs.check_under

    def watched(*args: Any) -> Any:
        held.append(db.get_engine().sync_engine.pool.checkedout())
        return check_under(*args)

    monkeypatch.setattr(inputs, "check_under", watched)
    created = await client.post(
        "/api/pipelines",
        json={"name": "daily", "input_path": "daily.csv"},
        headers={"Idempotency-Key": "daily-1"},
    )
    assert (created.status_code, held) == (201, [0])


async def test_two_unnamed_header_columns_are_refused(client: httpx.AsyncClient) -> None:
    await assert_rejected_upload(
        client,
        csv("1,a,A,10,2,true,2024-01-01,x,y", header=HEADER + ",,"),
        "file: line 1: the header has more than one unnamed column (nothing between two "
        "delimiters, or a delimiter at the end); name each column or remove the extra delimiters",
    )


async def test_one_unnamed_header_column_is_kept(client: httpx.AsyncClient) -> None:
    content = csv("1,a,A,10,2,true,2024-01-01,x", header=HEADER + ",")
    response = await upload(client, content)
    assert (response.status_code, response.json()["record_count"]) == (201, 1), response.text
    assert stored_bytes(Path(response.json()["input_path"])) == content  # the column with it
