"""HTTP edge cases a fuzz review found (schemathesis and by hand): each is a 4xx in the error
shape naming the field and the fix, never a 500 or a 400 that names nothing."""

import gzip

import httpx
import pytest
from sqlalchemy import update

from app.db import get_sessionmaker
from app.models import Pipeline
from tests.api.test_uploads import HEADER, leftover_uploads, pipelines

BODY = {"loc": ["body"]}
NO_FILE = "file: send the input file as the form field 'file'"


def _form(boundary: str, name: str = "edge") -> bytes:
    """A form of one field, `name`, and no file."""
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
        f"--{boundary}--\r\n"
    ).encode()


async def _upload(client: httpx.AsyncClient, boundary: str, body: bytes) -> httpx.Response:
    return await client.post(
        "/api/pipelines",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def _on_body(message: str, kind: str) -> dict[str, object]:
    """A 422 on the whole body: its loc is ["body"], once."""
    return {
        "message": message,
        "detail": [{**BODY, "msg": message.removeprefix("body: "), "type": kind}],
    }


async def test_a_multipart_boundary_longer_than_rfc_2046_allows_is_a_422_on_body(
    client: httpx.AsyncClient,
) -> None:
    """257 characters was a 500 (python-multipart raised before the parse was guarded)."""
    before = leftover_uploads()
    for length in (257, 71):
        response = await _upload(client, "b" * length, _form("b" * length))
        message = (
            f"body: the boundary in its Content-Type is {length} characters long; RFC 2046 "
            "allows 1 to 70: send a shorter one (HTTP clients choose one that fits)"
        )
        assert (response.status_code, response.json()) == (422, _on_body(message, "input_file"))
    longest = await _upload(client, "b" * 70, _form("b" * 70))
    assert (longest.status_code, longest.json()["message"]) == (422, NO_FILE)
    assert (await pipelines(), leftover_uploads()) == (0, before)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"abc",
            "body: does not start with the boundary its Content-Type gives (--b0undary and a line "
            "break); send the body together with the Content-Type made for it (parser: character "
            "1 is 'a', not '-')",
        ),
        (
            b"--b0undar\r\n",
            "body: does not start with the boundary its Content-Type gives (--b0undary and a line "
            "break); send the body together with the Content-Type made for it (parser: character "
            "10 is '\\r', not 'y')",
        ),
        (
            b"--b0undary\r\nBad Header\r\n\r\nx\r\n--b0undary--\r\n",
            "body: a part's headers are malformed; each is a `Name: value` line ending in CRLF, "
            "and an empty line ends them (parser: ' ' in a header's name)",
        ),
    ],
)
async def test_a_body_its_boundary_does_not_delimit_says_what_is_wrong(
    client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    """It said "Expected boundary character 45, got 97 at index 2", on loc ["body", "body"]."""
    response = await _upload(client, "b0undary", body)
    assert (response.status_code, response.json()) == (422, _on_body(message, "input_file"))


async def test_a_json_number_of_more_than_4300_digits_is_a_422_on_body(
    client: httpx.AsyncClient,
) -> None:
    """Python's json refuses to convert it: that was a 400 "There was an error parsing the body",
    on every JSON route."""
    digits = "9" * 4301
    message = (
        "body: a number of more than 4,300 digits; no field takes one that long: send each "
        "field's value in its range (see /docs)"
    )
    headers = {"content-type": "application/json", "origin": "http://test"}
    for method, path, body in [
        ("POST", "/api/pipelines", f'{{"name": "n", "record_count": {digits}}}'),
        ("PUT", "/api/pipelines/1/schedule", f'{{"interval_seconds": -{digits}}}'),
        ("POST", "/dashboard/key", f'{{"key": {digits}}}'),
    ]:
        response = await client.request(method, path, content=body, headers=headers)
        assert (response.status_code, response.json()) == (
            422,
            _on_body(message, "json_number_too_long"),
        ), path
    assert await pipelines() == 0


async def test_a_json_body_of_another_content_type_is_told_which_to_send(
    client: httpx.AsyncClient,
) -> None:
    """FastAPI parses application/json and application/*+json only: text/json's object reached
    the model as bytes, and was called "not a list, string or number"."""
    for content_type in ("text/json", "text/json; charset=utf-8", "application/jsonx"):
        response = await client.post(
            "/api/pipelines", content='{"name": "n"}', headers={"content-type": content_type}
        )
        shown = content_type.split(";")[0]
        assert (response.status_code, response.json()["message"]) == (
            422,
            f"body: send a JSON object with Content-Type: application/json (this one's is {shown})",
        )
    problem = await client.post(
        "/api/pipelines", content="[1]", headers={"content-type": "application/problem+json"}
    )
    assert (problem.status_code, problem.json()["message"]) == (
        422,
        "body: must be a JSON object ({...}), not a list, string or number",
    )


async def test_a_content_coded_body_is_a_415_naming_the_header(client: httpx.AsyncClient) -> None:
    """A gzipped JSON body was "not UTF-8"; one marked br was read as it came, the header unheeded.
    A body is read as sent: any Content-Encoding but identity is refused before it is read."""
    plain = b'{"name": "coded"}'
    sent = [
        ("gzip", gzip.compress(plain), "gzip"),
        ("br", plain, "br"),
        ("identity, gzip", gzip.compress(plain), "identity, gzip"),
        ("X-Custom" * 10, plain, "X-CustomX-CustomX-CustomX-CustomX-Custo…"),
    ]
    for coding, body, shown in sent:
        response = await client.post(
            "/api/pipelines",
            content=body,
            headers={"content-type": "application/json", "content-encoding": coding},
        )
        message = (
            f"Content-Encoding: {shown} is not accepted; send the body uncompressed, without "
            "Content-Encoding (a compressed input file is uploaded as the form's file field: "
            ".gz, .bz2 and .xz files are unpacked)"
        )
        assert (
            response.status_code,
            response.json(),
            response.headers["accept-encoding"],
        ) == (415, {"message": message, "detail": message}, "identity"), coding
    upload = await client.post(
        "/api/pipelines",
        data={"name": "coded"},
        files={"file": ("o.csv.gz", gzip.compress(HEADER.encode()))},
        headers={"content-encoding": "gzip"},
    )
    assert upload.status_code == 415
    assert await pipelines() == 0
    identity = await client.post(
        "/api/pipelines",
        content=plain,
        headers={"content-type": "application/json", "content-encoding": "Identity"},
    )
    no_body = await client.get("/api/pipelines", headers={"content-encoding": "gzip"})
    assert (identity.status_code, identity.json()["name"], no_body.status_code) == (
        201,
        "coded",
        200,
    )


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS"])
async def test_a_405_names_every_method_its_path_allows(
    client: httpx.AsyncClient, method: str
) -> None:
    """Starlette's Allow named the first route whose path matched: POST alone on /api/pipelines,
    GET alone on a pipeline, PUT alone on its schedule."""
    for path, allowed in [
        ("/api/pipelines", "GET, HEAD, POST"),
        ("/api/pipelines/1", "DELETE, GET, HEAD"),
        ("/api/pipelines/1/schedule", "DELETE, GET, HEAD, PUT"),
        ("/api/pipelines/1/trigger", "POST"),
    ]:
        response = await client.request(method, path)
        message = f"{method} is not allowed on this path; it allows {allowed}"
        assert (response.status_code, response.json(), response.headers["allow"]) == (
            405,
            {"message": message, "detail": message},
            allowed,
        ), path
    answered = [
        # a body for the create alone: DELETE takes none (app/api/no_body.py)
        (
            await client.request(
                listed, path, json={"name": "listed"} if listed == "POST" else None
            )
        ).status_code
        for path, listed in [
            ("/api/pipelines", "GET"),
            ("/api/pipelines", "HEAD"),
            ("/api/pipelines", "POST"),
            ("/api/pipelines/2", "DELETE"),
            ("/api/pipelines/2", "GET"),
            ("/api/pipelines/2", "HEAD"),
        ]
    ]
    assert answered == [200, 200, 201, 404, 404, 404]


KEY = "Idempotency-Key"


async def test_an_idempotency_key_is_utf_8_of_up_to_200_characters(
    client: httpx.AsyncClient,
) -> None:
    """Header values come as latin-1: 200 "é" counted as 400 characters, and a key reused was
    echoed as mojibake ('clÃ©-Ã©-ð\\x9f\\x98\\x80')."""
    longest = await client.post(
        "/api/pipelines", json={"name": "long"}, headers={KEY: ("é" * 200).encode()}
    )
    again = await client.post(
        "/api/pipelines", json={"name": "long"}, headers={KEY: ("é" * 200).encode()}
    )
    assert (longest.status_code, again.status_code, again.json()["id"]) == (
        201,
        201,
        longest.json()["id"],
    )
    too_long = await client.post(
        "/api/pipelines", json={"name": "n"}, headers={KEY: ("é" * 201).encode()}
    )
    assert (too_long.status_code, too_long.json()) == (
        422,
        {
            "message": f"{KEY}: 201 characters long; send at most 200",
            "detail": [
                {
                    "loc": ["header", KEY],
                    "msg": "201 characters long; send at most 200",
                    "type": "string_too_long",
                }
            ],
        },
    )
    key = "clé-é-😀"
    first = await client.post("/api/pipelines", json={"name": "n1"}, headers={KEY: key.encode()})
    other = await client.post("/api/pipelines", json={"name": "n2"}, headers={KEY: key.encode()})
    assert (first.status_code, other.status_code, other.json()["message"]) == (
        201,
        422,
        f"{KEY} 'clé-é-😀' was first used to create pipeline {first.json()['id']} ('n1') with a "
        "different request; send a new key for a new request, or repeat the first one exactly",
    )


@pytest.mark.parametrize(
    ("headers", "message", "kind"),
    [
        (
            [(KEY, "one"), (KEY, "two")],
            "sent 2 times; send one Idempotency-Key header with one key",
            "multiple_values",
        ),
        ([(KEY, "")], "empty; send a key, or no header", "string_too_short"),
    ],
)
async def test_an_idempotency_key_that_is_not_one_key_is_a_422(
    client: httpx.AsyncClient,
    headers: list[tuple[str, str | bytes]],
    message: str,
    kind: str,
) -> None:
    """Two headers were taken as the first (a proxy merging them makes a third key: "one, two")."""
    made = await client.post("/api/pipelines", json={"name": "keyless"})
    assert (made.status_code, made.json()["id"]) == (201, 1)
    for path in ("/api/pipelines", "/api/pipelines/1/trigger", "/api/pipelines/1/retry"):
        body = {"name": "n"} if path == "/api/pipelines" else None  # trigger, retry: none
        response = await client.post(path, json=body, headers=headers)
        problem = {"loc": ["header", KEY], "msg": message, "type": kind}
        assert (response.status_code, response.json()) == (
            422,
            {"message": f"{KEY}: {message}", "detail": [problem]},
        ), path
    assert await pipelines() == 1


async def test_a_key_sent_as_latin_1_is_read_as_latin_1(client: httpx.AsyncClient) -> None:
    """Browsers' fetch and Python's http.client (requests) send a header's text as latin-1: such a
    key is not UTF-8, and was refused for a while."""
    first = await client.post("/api/pipelines", json={"name": "n"}, headers={KEY: b"caf\xe9-1"})
    again = await client.post("/api/pipelines", json={"name": "n"}, headers={KEY: b"caf\xe9-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    other = await client.post("/api/pipelines", json={"name": "m"}, headers={KEY: b"caf\xe9-1"})
    assert other.json()["message"].startswith(f"{KEY} 'café-1' was first used to create")


async def test_a_key_stored_in_its_old_spelling_is_found_by_its_repeat(
    client: httpx.AsyncClient,
) -> None:
    """Until 2026-11-27 a key's UTF-8 bytes were stored read as latin-1 ('clé' as 'clÃ©'): a
    repeat sent after the change made a second pipeline."""
    first = await client.post("/api/pipelines", json={"name": "n"}, headers={KEY: "clé".encode()})
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(
            update(Pipeline).values(idempotency_key="clé".encode().decode("latin-1"))
        )
    again = await client.post("/api/pipelines", json={"name": "n"}, headers={KEY: "clé".encode()})
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert await pipelines() == 1
