"""The API's HTTP server as it runs (uvicorn with app.serving's protocol, a real process): a
request head too large is refused at once, and the other clients are served meanwhile."""

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
