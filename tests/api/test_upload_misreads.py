"""Input files sent the wrong way, told how to send them right: a file part under another name
than `file`, JSON Lines sent as CSV (and CSV as JSON Lines), a directory named as input_path.
And what comes back of a JSON Lines file: its rejected rows with their numbers, timestamps written
one way in CSV and JSON Lines downloads."""

import asyncio
import datetime as dt
import json
import os
from pathlib import Path

import httpx
import polars as pl
import pytest

from app.models import Status
from app.pipeline import work
from app.pipeline.input_files import inputs
from app.pipeline.input_files.input_dir import readable_source
from app.pipeline.store import RunFiles
from tests.api.test_uploads import (
    GOOD,
    assert_rejected_upload,
    csv,
    input_dir,
    leftover_uploads,
    parquet_bytes,
    pipelines,
    upload,
)
from tests.conftest import SetSetting
from tests.support import rows
from tests.support.stages import run_stages_on

__all__ = ["input_dir"]  # the fixture, shared with test_uploads


def jsonl(*records: dict[str, object]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


RECORD: dict[str, object] = {
    "id": 1,
    "name": "a",
    "category": "A",
    "value": 10.5,
    "quantity": 2,
    "is_active": True,
    "created_at": "2026-03-01T12:00:00Z",
}
JSONL = jsonl(RECORD, {**RECORD, "id": 2})


# --------------------------------------------------------------------------- the file's part


BOUNDARY = "misread"


def form(*parts: tuple[str, bytes]) -> bytes:
    """A multipart/form-data body of (Content-Disposition's parameters, content) parts."""
    body = b"".join(
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()
        + content
        + b"\r\n"
        for disposition, content in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize(
    ("disposition", "message"),
    [
        (
            'name="upload"; filename="f.csv"',
            "upload: a file part under another name; send the file as the field 'file' "
            "(curl -F file=@f.csv)",
        ),
        (  # quoted as a shell needs it, without the folders some clients send
            'name="File"; filename="C:\\exports\\my orders.csv"',
            "File: a file part under another name; send the file as the field 'file' "
            "(curl -F 'file=@my orders.csv')",
        ),
        (
            "name=\"data\"; filename*=UTF-8''caf%C3%A9.csv",
            "data: a file part under another name; send the file as the field 'file' "
            "(curl -F 'file=@café.csv')",
        ),
        (  # a file part whose file name is empty: an example's
            'name="data"; filename=""',
            "data: a file part under another name; send the file as the field 'file' "
            "(curl -F file=@data.csv)",
        ),
    ],
)
async def test_a_file_sent_under_another_name_is_told_to_send_it_as_file(
    client: httpx.AsyncClient, disposition: str, message: str
) -> None:
    """curl -F upload=@f.csv was told "upload: unknown field; remove it", as if the file were
    not wanted at all."""
    before = leftover_uploads()
    response = await client.post(
        "/api/pipelines",
        content=form(('name="name"', b"x"), (disposition, csv(GOOD))),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    field, said = message.split(": ", 1)
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": message,
            "detail": [{"loc": ["body", field], "msg": said, "type": "misnamed_file"}],
        },
    )
    assert await pipelines() == 0
    assert leftover_uploads() == before


async def test_an_unknown_text_field_is_still_an_unknown_field(client: httpx.AsyncClient) -> None:
    """Only a part carrying a file name is a misnamed file: a text field keeps its message."""
    response = await client.post(
        "/api/pipelines",
        files={"name": (None, "x"), "upload": (None, "f.csv"), "file": ("f.csv", csv(GOOD))},
    )
    assert (response.status_code, response.json()["message"]) == (
        422,
        "upload: unknown field; remove it (see /docs for the accepted fields)",
    )


NOTES = ('name="notes"; filename="b.txt"', b"remember the milk")
ONE_FILE = "send one file per pipeline; remove the other file part, 'notes' (b.txt)"


@pytest.mark.parametrize("file_first", [True, False], ids=["file-then-notes", "notes-then-file"])
async def test_a_second_file_under_another_name_is_told_to_be_removed(
    client: httpx.AsyncClient, file_first: bool
) -> None:
    """curl -F file=@a.csv -F notes=@b.txt was told to send b.txt as the field 'file', which got
    "send one file per pipeline". Either order is told which part to remove, and without it the
    form makes its pipeline."""
    before = leftover_uploads()
    file = ('name="file"; filename="a.csv"', csv(GOOD))
    parts = (file, NOTES) if file_first else (NOTES, file)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = await client.post(
        "/api/pipelines", content=form(('name="name"', b"x"), *parts), headers=headers
    )
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": f"file: {ONE_FILE}",
            "detail": [{"loc": ["body", "file"], "msg": ONE_FILE, "type": "input_file"}],
        },
    )
    assert await pipelines() == 0
    assert leftover_uploads() == before
    response = await client.post(
        "/api/pipelines", content=form(('name="name"', b"x"), file), headers=headers
    )
    assert response.status_code == 201, response.text


async def test_a_file_under_another_name_larger_than_the_limit_is_told_its_name(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    """A file part under another name is read (and dropped) in case a `file` part follows: past
    PIPELINE_MAX_UPLOAD_BYTES it is told its name at once, not that a file is too large."""
    setting("PIPELINE_MAX_UPLOAD_BYTES", "100")
    response = await client.post(
        "/api/pipelines",
        content=form(('name="upload"; filename="f.csv"', csv(GOOD, GOOD, GOOD))),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert (response.status_code, response.json()["message"]) == (
        422,
        "upload: a file part under another name; send the file as the field 'file' "
        "(curl -F file=@f.csv)",
    )


async def test_two_files_under_other_names_are_told_to_send_the_first_as_file(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/pipelines",
        content=form(('name="upload"; filename="f.csv"', csv(GOOD)), NOTES),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert (response.status_code, response.json()["message"]) == (
        422,
        "upload: a file part under another name; send the file as the field 'file' "
        "(curl -F file=@f.csv)",
    )


# --------------------------------------------------------------------------- content vs format

JSONL_AS_CSV = "line 1: a JSON object: the content looks like JSON Lines, not CSV; "
ARRAY_AS_CSV = (
    "line 1: a JSON array: the content looks like JSON, not CSV; write it as JSON Lines, one "
    'JSON object per line like {"id": 1}, and '
)
CSV_AS_JSONL = "line 1: comma-separated names: the content looks like CSV, not JSON Lines; "


@pytest.mark.parametrize(
    ("content", "filename", "fields", "message"),
    [
        (JSONL, "rows.csv", {}, f"file: {JSONL_AS_CSV}send it as format=jsonl"),
        (JSONL, "rows.jsonl", {"format": "csv"}, f"file: {JSONL_AS_CSV}send it as format=jsonl"),
        (
            b"\xef\xbb\xbf\r\n\n  " + JSONL,  # a byte-order mark, blank lines and spaces first
            "rows.csv",
            {},
            f"file: {JSONL_AS_CSV.replace('line 1', 'line 3')}send it as format=jsonl",
        ),
        (b'[{"id": 1}]\n', "rows.csv", {}, f"file: {ARRAY_AS_CSV}send it as format=jsonl"),
        (b"[\n  {\"id\": 1}\n]\n", "rows.csv", {}, f"file: {ARRAY_AS_CSV}send it as format=jsonl"),
        (csv(GOOD), "rows.jsonl", {}, f"file: {CSV_AS_JSONL}send it as format=csv"),
        (csv(GOOD), "rows.csv", {"format": "jsonl"}, f"file: {CSV_AS_JSONL}send it as format=csv"),
    ],
    ids=["jsonl-named-csv", "jsonl-sent-as-csv", "after-bom", "array", "array-over-lines",
         "csv-named-jsonl", "csv-sent-as-jsonl"],
)  # fmt: skip
async def test_content_of_another_text_format_is_told_which_to_send(
    client: httpx.AsyncClient,
    content: bytes,
    filename: str,
    fields: dict[str, str],
    message: str,
) -> None:
    """JSON Lines sent as CSV was told "missing required columns: id, name, …; the file's
    columns are '{"id": 1', ' "name": "a"', …"; CSV sent as JSON Lines "not JSON Lines"."""
    before = leftover_uploads()
    response = await upload(client, content, filename, **fields)
    assert (response.status_code, response.json()["message"]) == (422, message)
    assert await pipelines() == 0
    assert leftover_uploads() == before


@pytest.mark.parametrize(
    ("header", "columns"),
    [("[id],[name]", "'[id]', '[name]'"), ("[-1 is a name],x", "'[-1 is a name]', 'x'")],
)
async def test_a_csv_header_in_brackets_is_read_as_csv(
    client: httpx.AsyncClient, header: str, columns: str
) -> None:
    """SQL Server writes [id],[name]: a CSV, its columns misnamed, not JSON. [-1 is a name],x was
    refused as a JSON array."""
    await assert_rejected_upload(
        client,
        csv("1,a", header=header),
        "file: missing required columns: id, name, category, value, quantity, is_active, "
        f"created_at; the file's columns are {columns}",
    )


async def test_json_lines_of_blank_lines_is_told_so(client: httpx.AsyncClient) -> None:
    """Three blank lines were "line 4: not JSON Lines"."""
    await assert_rejected_upload(
        client,
        b"\n\n\n",
        'file: the file has only blank lines; JSON Lines has one JSON object per line, like {"id": 1}',
        "rows.jsonl",
    )


async def test_an_input_path_of_another_format_is_told_to_rename_it(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    """input_path has no format field: its name is what to change (it was told format=…)."""
    (input_dir / "rows.csv").write_bytes(JSONL)
    (input_dir / "rows.jsonl").write_bytes(csv(GOOD))
    (input_dir / "table.csv").write_bytes(parquet_bytes(pl.read_csv(csv(GOOD))))
    for path, message in {
        "rows.csv": f"{JSONL_AS_CSV}rename the file to end in .jsonl",
        "rows.jsonl": f"{CSV_AS_JSONL}rename the file to end in .csv",
        "table.csv": "the content is Parquet, not csv; rename the file to end in .parquet",
    }.items():
        response = await client.post("/api/pipelines", json={"name": "x", "input_path": path})
        assert (response.status_code, response.json()["message"]) == (
            422,
            f"input_path: {message}",
        ), path
    assert await pipelines() == 0


async def test_an_input_file_replaced_by_json_lines_fails_its_run_saying_so(
    client: httpx.AsyncClient, input_dir: Path, tmp_path: Path
) -> None:
    """The run reads the file again: it said "missing required columns" there too."""
    (input_dir / "daily.csv").write_bytes(csv(GOOD))
    response = await client.post("/api/pipelines", json={"name": "d", "input_path": "daily.csv"})
    assert response.status_code == 201, response.text
    (input_dir / "daily.csv").write_bytes(JSONL)
    source = work.InputSource(input_dir / "daily.csv", "csv")
    with pytest.raises(inputs.InputError) as refused:
        work.generate(
            RunFiles(tmp_path / "run"), record_count=0, seed=1, batch_rows=10, source=source
        )
    assert str(refused.value) == f"input_path: {JSONL_AS_CSV}rename the file to end in .jsonl"


# --------------------------------------------------------------------------- a directory


async def test_a_directory_as_input_path_is_told_to_name_a_file_in_it(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    """It was told "no file 'daily' in PIPELINE_INPUT_DIR", though it is there."""
    (input_dir / "daily").mkdir()
    (input_dir / "daily" / "notes.txt").write_text("not an input")
    (input_dir / "daily" / "b.jsonl").write_bytes(JSONL)
    (input_dir / "daily" / "a.csv.gz").write_bytes(b"")
    (input_dir / "empty.csv").mkdir()  # a directory named like a file
    for path, message in {
        "daily": "'daily' is a directory in PIPELINE_INPUT_DIR; name a file in it, such as "
        "'daily/a.csv.gz'",
        "daily/": "'daily/' is a directory in PIPELINE_INPUT_DIR; name a file in it, such as "
        "'daily/a.csv.gz'",
        "empty.csv": "'empty.csv' is a directory in PIPELINE_INPUT_DIR; name a file in it",
        ".": "'.' is a directory in PIPELINE_INPUT_DIR; name a file in it",
    }.items():
        response = await client.post("/api/pipelines", json={"name": "x", "input_path": path})
        assert (response.status_code, response.json()) == (
            422,
            {
                "message": f"input_path: {message}",
                "detail": [{"loc": ["body", "input_path"], "msg": message, "type": "input_file"}],
            },
        ), path
    assert await pipelines() == 0


async def test_an_input_file_replaced_by_a_directory_fails_its_run_saying_so(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    """The run's reading failed with "IsADirectoryError: [Errno 21] Is a directory: …", and was
    retried as if the disk had failed."""
    (input_dir / "daily.csv").write_bytes(csv(GOOD))
    response = await client.post("/api/pipelines", json={"name": "d", "input_path": "daily.csv"})
    assert response.status_code == 201, response.text
    (input_dir / "daily.csv").unlink()
    (input_dir / "daily.csv").mkdir()
    (input_dir / "daily.csv" / "part-1.csv").write_bytes(csv(GOOD))
    with pytest.raises(inputs.InputError) as refused:
        stored = await asyncio.to_thread(Path.resolve, input_dir / "daily.csv")  # as kept
        readable_source(stored, input_dir)
    assert str(refused.value) == (
        "input_path: 'daily.csv' is a directory in PIPELINE_INPUT_DIR; name a file in it, such "
        "as 'daily.csv/part-1.csv', and create the pipeline again with that input_path"
    )


async def test_a_named_pipe_is_no_input_file(client: httpx.AsyncClient, input_dir: Path) -> None:
    """At create it was "no file 'fifo.csv' in PIPELINE_INPUT_DIR"; a file replaced by one after
    the create left its run reading it for ever: "running", its worker's slot held."""
    os.mkfifo(input_dir / "fifo.csv")
    response = await client.post("/api/pipelines", json={"name": "f", "input_path": "fifo.csv"})
    assert (response.status_code, response.json()["message"]) == (
        422,
        "input_path: 'fifo.csv' is a named pipe, not a file; name a regular file",
    )
    (input_dir / "swap.csv").write_bytes(csv(GOOD))
    response = await client.post("/api/pipelines", json={"name": "s", "input_path": "swap.csv"})
    assert response.status_code == 201, response.text
    (input_dir / "swap.csv").unlink()
    os.mkfifo(input_dir / "swap.csv")
    with pytest.raises(inputs.InputError) as refused:
        stored = await asyncio.to_thread(Path.resolve, input_dir / "swap.csv")  # as kept
        readable_source(stored, input_dir)
    assert str(refused.value) == (
        "input_path: 'swap.csv' is a named pipe now, not a file; put the file back, or create the "
        "pipeline again with another input_path"
    )


async def test_a_link_re_pointed_outside_is_told_as_such(
    client: httpx.AsyncClient, input_dir: Path, tmp_path: Path
) -> None:
    """It said "/…/in/swap.csv is outside the uploads directory and PIPELINE_INPUT_DIR": the name
    it gave is inside; where the link leads is not."""
    (input_dir / "real.csv").write_bytes(csv(GOOD))
    (input_dir / "swap.csv").symlink_to(input_dir / "real.csv")
    response = await client.post("/api/pipelines", json={"name": "s", "input_path": "swap.csv"})
    assert response.status_code == 201, response.text
    stored = Path(response.json()["input_path"])
    (tmp_path / "elsewhere.csv").write_bytes(csv(GOOD))
    (input_dir / "swap.csv").unlink()
    (input_dir / "swap.csv").symlink_to(tmp_path / "elsewhere.csv")
    root = await asyncio.to_thread(input_dir.resolve)  # stored paths are under it
    with pytest.raises(inputs.InputError) as refused:
        readable_source(root / stored, input_dir)
    assert str(refused.value) == (
        "input_path: 'swap.csv' leads outside PIPELINE_INPUT_DIR now (a link re-pointed?); point "
        "it back at a file in it, or create the pipeline again"
    )


# --------------------------------------------------------------------------- what comes back


async def test_json_lines_rejects_come_back_with_the_numbers_sent(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Every value came back as text: "id": "2", "value": "2000.0", "is_active": "true"; then
    2000 as 2000.0, and a number of the file's own columns as text ("note": "7"). Each rejected
    line now comes back as it was sent, its reject_reason added."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        jsonl(
            RECORD,
            {**RECORD, "id": 2, "value": 2000},
            {**RECORD, "id": 3, "quantity": 500, "is_active": False, "note": 7},
        )
    )
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await rows.add_run(1, Status.FAILED, {}, record_count=3)
    run_stages_on(run_id, source, "jsonl")
    response = await client.get(f"/api/pipelines/1/runs/{run_id}/rejects?format=jsonl")
    assert response.status_code == 200, response.text
    sent = '"name": "a", "category": "A"'
    written = '"is_active": true, "created_at": "2026-03-01T12:00:00Z"'
    assert response.text == (
        f'{{"id": 2, {sent}, "value": 2000, "quantity": 2, {written}, '
        '"reject_reason": "value out of range [10, 1000]"}\n'
        f'{{"id": 3, {sent}, "value": 10.5, "quantity": 500, "is_active": false, '
        '"created_at": "2026-03-01T12:00:00Z", "note": 7, '
        '"reject_reason": "quantity out of range [1, 100]"}\n'
    )


async def test_csv_and_json_lines_downloads_write_timestamps_alike(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """CSV wrote created_at 2026-03-01T12:00:00.000000, JSON Lines 2026-03-01 12:00:00."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(JSONL)
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await rows.add_run(1, Status.COMPLETED, {}, record_count=2)
    run_stages_on(run_id, source, "jsonl")
    base = f"/api/pipelines/1/runs/{run_id}/output"
    as_csv = (await client.get(base, params={"format": "csv"})).text.splitlines()
    as_jsonl = (await client.get(base, params={"format": "jsonl"})).text.splitlines()
    column = as_csv[0].split(",").index("created_at")
    assert [line.split(",")[column] for line in as_csv[1:]] == [
        "2026-03-01T12:00:00.000000",
        "2026-03-01T12:00:00.000000",
    ]
    assert [json.loads(line)["created_at"] for line in as_jsonl] == [
        "2026-03-01T12:00:00.000000",
        "2026-03-01T12:00:00.000000",
    ]


async def test_json_lines_downloads_write_nested_timestamps_alike(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A timestamp inside a struct or list column of the input came back 2026-03-01 12:00:00."""
    at = dt.datetime(2026, 3, 1, 12, 0, 0)
    source = tmp_path / "in.parquet"
    pl.DataFrame([RECORD]).with_columns(
        created_at=pl.lit(at),
        event=pl.struct(at=pl.lit(at), kind=pl.lit("signup")),
        seen=pl.concat_list(pl.lit(at)),
    ).write_parquet(source)
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await rows.add_run(1, Status.COMPLETED, {}, record_count=1)
    run_stages_on(run_id, source, "parquet")
    response = await client.get(f"/api/pipelines/1/runs/{run_id}/output?format=jsonl")
    assert response.status_code == 200, response.text
    written = json.loads(response.text)
    assert (written["created_at"], written["event"], written["seen"]) == (
        "2026-03-01T12:00:00.000000",
        {"at": "2026-03-01T12:00:00.000000", "kind": "signup"},
        ["2026-03-01T12:00:00.000000"],
    )
