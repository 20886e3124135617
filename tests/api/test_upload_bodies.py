"""Multipart bodies as a client can get them wrong: cut short, or padded with fields. Nothing of
a refused body is kept, and it is held in memory only up to a bound."""

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from app import service
from app.config import get_settings
from tests.api.test_uploads import HEADER, leftover_uploads, pipelines
from tests.conftest import SetSetting

BOUNDARY = "b0undary"
ROWS = "".join(f"{i},n{i},A,10.5,2,true,2026-03-01\n" for i in range(1, 1001))


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


async def _post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(
        "/api/pipelines",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


async def test_a_body_cut_short_makes_no_pipeline(client: httpx.AsyncClient) -> None:
    """A connection lost mid-upload, at a line's end: the first 501 rows once made a pipeline."""
    whole = _part("name", b"cut") + _part("file", (HEADER + "\n" + ROWS).encode(), "o.csv")
    cut = whole[: whole.index(b"501,n501")]
    before = leftover_uploads()
    response = await _post(client, cut)
    assert (response.status_code, response.json()["message"]) == (
        422,
        "body: ended before the form's closing boundary; send the whole form again",
    )
    assert (await pipelines(), leftover_uploads()) == (0, before)
    complete = await _post(client, whole + f"--{BOUNDARY}--\r\n".encode())
    assert (complete.status_code, complete.json()["record_count"]) == (201, 1000)


async def test_thousands_of_small_fields_are_refused_as_they_arrive(
    client: httpx.AsyncClient,
) -> None:
    """Each field under its 64 KiB limit, as many as a client sends: all were held in memory until
    the body ended (up to PIPELINE_MAX_UPLOAD_BYTES, 2 GiB)."""
    padding = b"".join(_part("description", b"x" * 60_000) for _ in range(5))
    body = _part("name", b"padded") + padding + f"--{BOUNDARY}--\r\n".encode()
    response = await _post(client, body)
    assert (response.status_code, response.json()["message"]) == (
        422,
        "body: text fields longer than 262,144 bytes in all (their names and part headers "
        "included)",
    )
    assert await pipelines() == 0


async def test_unknown_fields_are_refused_before_they_are_kept(client: httpx.AsyncClient) -> None:
    """Empty fields under unique 4 KB names counted for nothing: each was kept, then named twice
    in the 422 (98 MB sent, 1 GB held). The first unknown name ends the upload, and is cut short."""
    parts = [_part(f"f{i:09d}" + "a" * 4_000, b"") for i in range(2_000)]
    before = leftover_uploads()
    response = await _post(client, b"".join(parts) + f"--{BOUNDARY}--\r\n".encode())
    shown = "f000000000" + "a" * 53 + "…"
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": f"{shown}: unknown field; remove it (see /docs for the accepted fields)",
            "detail": [
                {
                    "loc": ["body", shown],
                    "msg": "unknown field; remove it (see /docs for the accepted fields)",
                    "type": "extra_forbidden",
                }
            ],
        },
    )
    assert (await pipelines(), leftover_uploads()) == (0, before)
    nameless = await _post(client, _part("", b"x") + f"--{BOUNDARY}--\r\n".encode())
    assert (nameless.status_code, nameless.json()["message"]) == (
        422,
        "body: a part without a field name; name each (name, description, trigger, format, file)",
    )


async def test_a_form_of_more_parts_than_it_has_fields_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """Known names repeated as often as a client likes: 16 parts at most, said as they stream
    in; a field given twice within them is refused once the form is read."""
    body = b"".join(_part("trigger", b"false") for _ in range(17)) + _part("name", b"many")
    response = await _post(client, body + f"--{BOUNDARY}--\r\n".encode())
    assert (response.status_code, response.json()["message"]) == (
        422,
        "body: more than 16 parts; the form's fields are name, description, trigger, format, "
        "file, each sent once",
    )
    sixteen = b"".join(_part("trigger", b"false") for _ in range(14)) + _part("name", b"many")
    sixteen += _part("file", (HEADER + "\n" + ROWS).encode(), "o.csv")
    repeated = await _post(client, sixteen + f"--{BOUNDARY}--\r\n".encode())
    assert (repeated.status_code, repeated.json()["message"]) == (
        422,
        "trigger: given 14 times; give it once",
    )


async def test_part_headers_count_into_the_text_budget(client: httpx.AsyncClient) -> None:
    """Up to eight headers of 4 KB a part, sixteen parts: half a megabyte held, values empty."""
    padding = "".join(f"X-Padding-{i}: {'p' * 4_000}\r\n" for i in range(7)).encode()
    padded = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="description"\r\n'.encode()
        + padding
        + b"\r\n\r\n"
        for _ in range(15)
    )
    response = await _post(client, _part("name", b"p") + padded + f"--{BOUNDARY}--\r\n".encode())
    assert (response.status_code, response.json()["message"]) == (
        422,
        "body: text fields longer than 262,144 bytes in all (their names and part headers "
        "included)",
    )
    assert await pipelines() == 0


async def test_a_database_failure_after_the_commit_keeps_the_pipelines_file(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline was committed, then its first run's read failed (503): the file was deleted
    from under the pipeline that stayed."""

    async def database_down(**_: object) -> None:
        raise OperationalError("SELECT", {}, Exception("the database went away"))

    monkeypatch.setattr(service, "get_latest_run", database_down)
    body = _part("name", b"kept") + _part("file", (HEADER + "\n" + ROWS).encode(), "o.csv")
    response = await _post(client, body + f"--{BOUNDARY}--\r\n".encode())
    assert response.status_code == 503
    monkeypatch.undo()
    listed = (await client.get("/api/pipelines")).json()["items"]
    assert [p["name"] for p in listed] == ["kept"]
    assert await asyncio.to_thread(Path(listed[0]["input_path"]).is_file)


async def test_an_uploaded_file_cannot_be_named_as_input_path(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    """PIPELINE_INPUT_DIR holding the uploads: a pipeline naming another's upload deleted it
    with itself."""
    body = _part("name", b"uploaded") + _part("file", (HEADER + "\n" + ROWS).encode(), "o.csv")
    uploaded = (await _post(client, body + f"--{BOUNDARY}--\r\n".encode())).json()
    setting("PIPELINE_INPUT_DIR", str(get_settings().data_dir))
    relative = Path(uploaded["input_path"]).relative_to(get_settings().data_dir)
    response = await client.post("/api/pipelines", json={"name": "x", "input_path": str(relative)})
    assert (response.status_code, response.json()["message"]) == (
        422,
        f"input_path: {str(relative)!r} is an uploaded file; upload it again instead",
    )
