"""The API's HTTP server as it runs (uvicorn with app.serving's protocol, a real process): a
request head too large is refused at once, and the other clients are served meanwhile; a request
the HTTP parser refuses is answered in the API's error shape, saying what to fix."""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from app.config import PROJECT_ROOT
from app.serving import HEAD_LIMIT
from tests.support.postgres import free_port


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "app.main:app"),
            *("--http", "app.serving:BoundedHttpTools", "--port", str(port), "--no-access-log"),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _send_head(url: str, head_bytes: int) -> bytes:
    """Send a request whose one header is `head_bytes` long, in 64 kB pieces as a slow client
    would, until the server stops reading; what it answered."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        piece = b"a" * 65_536
        try:
            for _ in range(head_bytes // len(piece)):
                conn.sendall(piece)
            conn.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # it stopped reading: its answer is waiting
        answer = b""
        while chunk := conn.recv(65_536):
            answer += chunk
            if b"\r\n\r\n" in answer and not answer.startswith(b"HTTP/1.1 200"):
                break
        return answer


def test_a_request_head_past_the_limit_is_a_431_and_a_large_one_under_it_is_served(
    server: str,
) -> None:
    refused = _send_head(server, 8 * HEAD_LIMIT)
    head, _, body = refused.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert body == (
        b'{"message": "request line and headers over 1 MiB; send a shorter URL and fewer or '
        b'shorter headers (bodies go in the body)", "detail": "request head too large"}'
    )
    served = _send_head(server, HEAD_LIMIT // 2)
    assert served.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"


def test_a_large_upload_body_is_no_head(server: str) -> None:
    """The limit is on the head: a body of many times it in one request still reaches the API
    (here its 422 for a form without a name)."""
    response = httpx.post(
        f"{server}/api/pipelines",
        files={"file": ("big.csv", b"x" * (4 * HEAD_LIMIT))},
        timeout=30,
    )
    assert (response.status_code, response.json()["message"]) == (422, "name: Field required")


def _exchange(url: str, request: bytes) -> tuple[bytes, dict[str, bytes], dict[str, str]]:
    """Send raw bytes; the status line, headers and JSON body of the last answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65_536):
            answer += chunk
    while True:  # answers one after another, each of its content-length
        head, _, rest = answer.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines)
        length = int(headers[b"content-length"])
        body, answer = rest[:length], rest[length:]
        if not answer:
            return status, headers, json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "message", "said"),
    [
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x01b\r\n\r\n",
            b"400 Bad Request",
            "Idempotency-Key: holds a control character (a byte below 0x20 other than tab, or "
            "0x7F), which HTTP does not allow in a header; remove it",
            "Invalid header value char",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nIdempotency Key: ab\r\n\r\n",
            b"400 Bad Request",
            "a header's name holds a character HTTP does not allow in names (a space, a control "
            "character, a quote…); names are letters, digits and !#$%&'*+-.^_`|~",
            "Invalid header token",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}, and more",
            b"400 Bad Request",
            "the request does not start with an HTTP method; if it followed another on the same "
            "connection, that one's body was longer than its Content-Length: send Content-Length "
            "equal to the body's length in bytes",
            "Invalid method encountered",
        ),
        (
            b"GET /health?q=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"414 Request-URI Too Long",
            "the URL is longer than 65,535 bytes; send a shorter one (fewer or shorter query "
            "parameters)",
            "url is too long: url length of 70010 bytes exceeds the maximum of 65535 bytes",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"400 Bad Request",
            "Content-Length: sent twice; send it once",
            "Duplicate Content-Length",
        ),
        (
            b"GET /health HTTP/7.0\r\nHost: x\r\n\r\n",
            b"400 Bad Request",
            "not a valid HTTP/1.1 request (Invalid HTTP version); send one as an HTTP client "
            "makes it",
            "Invalid HTTP version",
        ),
    ],
    ids=[
        "control-character",
        "header-name",
        "body-past-length",
        "long-url",
        "two-lengths",
        "version",
    ],
)
def test_a_request_the_parser_refuses_is_answered_in_the_error_shape(
    server: str, request_bytes: bytes, status: bytes, message: str, said: str
) -> None:
    """These were a plain-text 400 "Invalid HTTP request received.", naming nothing."""
    answered = _exchange(server, request_bytes)
    assert answered == (
        b"HTTP/1.1 " + status,
        {
            **{name: value for name, value in answered[1].items() if name in (b"date", b"server")},
            b"content-type": b"application/json",
            b"content-length": str(len(json.dumps({"message": message, "detail": said}))).encode(),
            b"connection": b"close",
        },
        {"message": message, "detail": said},
    )
