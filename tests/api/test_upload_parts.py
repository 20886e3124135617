"""The upload form's parts sent the wrong way, as curl sends them (SQLite and PostgreSQL): a file
under a text field's name (`curl -F name=@orders.csv`) was taken as that field's text, and a file
sent as text (`curl -F 'file=<orders.csv'`, no file name) was told "cannot tell the format of
'upload'", a name it never sent."""

import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_upload_misreads import BOUNDARY, JSONL, form
from tests.api.test_uploads import GOOD, csv, leftover_uploads, pipelines, stored_bytes

MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
NAME = ('name="name"', b"nightly")
FILE = ('name="file"; filename="orders.csv"', csv(GOOD))
AS_TEXT = ('name="file"', csv(GOOD))  # curl -F 'file=<orders.csv'
SENT_AS_TEXT = (
    "sent as text, without a file name (as curl -F 'file=<data.csv' sends it), so its format "
    "cannot be told; send it as a file (curl -F file=@data.csv), or send format=csv|jsonl|parquet "
    "with it"
)


def refusal(field: str, message: str, kind: str) -> dict[str, Any]:
    return {
        "message": f"{field}: {message}",
        "detail": [{"loc": ["body", field], "msg": message, "type": kind}],
    }


async def post_form(client: httpx.AsyncClient, *parts: tuple[str, bytes]) -> httpx.Response:
    return await client.post("/api/pipelines", content=form(*parts), headers=MULTIPART)


@pytest.mark.parametrize(
    ("part", "field", "message"),
    [
        (
            ('name="name"; filename="orders.csv"', csv(GOOD)),
            "name",
            "a text field, but a file was sent in it (orders.csv); send name as text, and the "
            "file as the field 'file' (curl -F file=@orders.csv)",
        ),
        (  # a one-line file was the pipeline's name, or its description
            ('name="description"; filename="C:\\exports\\my notes.txt"', b"about orders"),
            "description",
            "a text field, but a file was sent in it (my notes.txt); send description as text, "
            "and the file as the field 'file' (curl -F 'file=@my notes.txt')",
        ),
        (
            ('name="format"; filename=""', b"csv"),
            "format",
            "a text field, but a file was sent in it; send format as text, and the file as the "
            "field 'file' (curl -F file=@data.csv)",
        ),
    ],
    ids=["name", "description", "format"],
)
async def test_a_file_under_a_text_field_s_name_is_refused(
    client: httpx.AsyncClient, part: tuple[str, bytes], field: str, message: str
) -> None:
    before = leftover_uploads()
    parts = [FILE, part] if field == "name" else [NAME, FILE, part]
    response = await post_form(client, *parts)
    assert (response.status_code, response.json()) == (
        422,
        refusal(field, message, "file_in_text_field"),
    )
    assert (await pipelines(), leftover_uploads()) == (0, before)


async def test_a_file_under_a_text_field_s_name_from_a_python_client(
    client: httpx.AsyncClient,
) -> None:
    """httpx's and requests' `files=` send a file name: the same refusal."""
    response = await client.post(
        "/api/pipelines", files={"name": ("orders.csv", csv(GOOD)), "file": ("a.csv", csv(GOOD))}
    )
    assert (response.status_code, response.json()["message"]) == (
        422,
        "name: a text field, but a file was sent in it (orders.csv); send name as text, and the "
        "file as the field 'file' (curl -F file=@orders.csv)",
    )


async def test_a_file_sent_as_text_without_a_format_is_told_to_send_it_as_a_file(
    client: httpx.AsyncClient,
) -> None:
    before = leftover_uploads()
    response = await post_form(client, NAME, AS_TEXT)
    assert (response.status_code, response.json()) == (
        422,
        refusal("file", SENT_AS_TEXT, "input_file"),
    )
    assert (await pipelines(), leftover_uploads()) == (0, before)


async def test_a_file_sent_with_an_empty_name_is_told_so(client: httpx.AsyncClient) -> None:
    """`curl -F 'file=@orders.csv;filename='` was told of 'upload', a name it never sent; with
    `format` it is taken."""
    unnamed = ('name="file"; filename=""', csv(GOOD))
    response = await post_form(client, NAME, unnamed)
    assert (response.status_code, response.json()) == (
        422,
        refusal(
            "file",
            "sent with an empty file name, so its format cannot be told; send its name (curl -F "
            "file=@data.csv) or format=csv|jsonl|parquet with it",
            "input_file",
        ),
    )
    taken = await post_form(client, NAME, unnamed, ('name="format"', b"csv"))
    assert (taken.status_code, taken.json()["input_format"]) == (201, "csv")


@pytest.mark.parametrize(
    ("content", "fmt", "records", "kept"),
    [
        (csv(GOOD), "csv", 1, csv(GOOD)),
        (gzip.compress(csv(GOOD)), "csv", 1, csv(GOOD)),  # told by its bytes, as any upload
        (JSONL, "jsonl", 2, JSONL),
    ],
    ids=["csv", "gzip", "jsonl"],
)
async def test_a_file_sent_as_text_with_its_format_is_taken(
    client: httpx.AsyncClient, content: bytes, fmt: str, records: int, kept: bytes
) -> None:
    """Its content arrived whole (curl's < sends the file's bytes as they are), and `format`
    says what the missing file name would have: given after the file, as here, or before."""
    response = await post_form(
        client, NAME, ('name="file"', content), ('name="format"', fmt.encode())
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["record_count"], body["input_format"]) == ("nightly", records, fmt)
    stored = Path(body["input_path"])
    assert (stored.name, stored_bytes(stored)) == (f"input.{fmt}", kept)


@pytest.mark.parametrize("with_format", [False, True])
async def test_a_file_s_name_sent_as_text_is_told_to_send_the_file(
    client: httpx.AsyncClient, with_format: bool
) -> None:
    """`curl -F file=orders.csv` (no @) sends the name: said so, whether or not `format` is."""
    fields = [('name="format"', b"csv")] if with_format else []
    response = await post_form(client, NAME, ('name="file"', b"exports/orders.csv.gz\n"), *fields)
    message = (
        "got the text 'exports/orders.csv.gz', not the file it names; send the file itself "
        "(curl -F file=@exports/orders.csv.gz)"
    )
    assert (response.status_code, response.json()) == (
        422,
        refusal("file", message, "input_file"),
    )


@pytest.mark.parametrize(
    "parts",
    [
        [NAME, ('name="name"', b"b"), FILE],
        [NAME, ('name="trigger"', b"true"), ('name="trigger"', b"false"), FILE],
    ],
    ids=["name", "trigger"],
)
async def test_a_text_field_given_twice_is_refused(
    client: httpx.AsyncClient, parts: list[tuple[str, bytes]]
) -> None:
    """The last one was taken: name=a then name=b made a pipeline "b", and trigger=true then
    trigger=false started no run. A query parameter given twice is refused the same way."""
    before = leftover_uploads()
    field = parts[1][0].split('"')[1]
    response = await post_form(client, *parts)
    assert (response.status_code, response.json()["message"]) == (
        422,
        f"{field}: given 2 times; give it once",
    )
    assert (await pipelines(), leftover_uploads()) == (0, before)
