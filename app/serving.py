"""The API's HTTP protocol: uvicorn's httptools parser with a bound on a request's head, and its
refusals of what is not HTTP in the API's error shape, saying what was wrong.

httptools puts no limit on the request line or the headers and builds them up on the event loop:
one client sending a header of hundreds of megabytes held every other request up for seconds
and the process's memory grew with it, before any API key was looked at. A head still incomplete
after HEAD_LIMIT bytes is refused with 431 and the connection closed.
A request httptools cannot parse (a URL over 64 KiB, a control character in a header, the rest of
a body longer than its Content-Length) was a plain-text 400 "Invalid HTTP request received.".
`uvicorn app.main:app --http app.serving:BoundedHttpTools` (make up, compose, the Dockerfile).
And the line the API's log starts with: where it listens, which database and Prefect server.
"""

import json
import logging
import os
import sys
from http import HTTPStatus
from pathlib import Path

from uvicorn.main import main as uvicorn_command
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.bad_requests import refusal
from app.config import get_settings
from app.shown import shown_database_url, shown_prefect_url

logger = logging.getLogger(__name__)
# Prefect's logging configuration shows WARNING and up of other loggers (uvicorn's "running on"
# line too): the start line is information, and shown
logger.setLevel(logging.INFO)

# generous for any real request (browsers send a few kB); a chunk the event loop hands over is at
# most 256 kB, and one that ends a message and starts the next is counted whole
HEAD_LIMIT = 1 << 20
_TOO_LARGE = {
    "message": "request line and headers over 1 MiB; send a shorter URL and fewer or shorter "
    "headers (bodies go in the body)",
    "detail": "request head too large",
}


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that stops reading a request whose head passes HEAD_LIMIT bytes, and
    answers one it cannot parse with JSON naming the problem."""

    _in_head = True
    _head_bytes = 0
    _chunk = b""  # the data being parsed: where a header a refusal names is found

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        self._chunk = data
        try:
            super().data_received(data)
        finally:
            self._chunk = b""
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > HEAD_LIMIT:
            self._refuse(431, _TOO_LARGE)

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this while it handles the parser's error: that error says what."""
        status, body = refusal(sys.exc_info()[1], self._chunk, msg)
        self._refuse(status, body)

    def _refuse(self, status: int, body: dict[str, str]) -> None:
        content = json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        self.transport.write(
            b"".join(head) + b"content-type: application/json\r\n"
            b"content-length: " + str(len(content)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + content
        )
        self.transport.close()


def log_start(argv: list[str] | None = None) -> None:
    """The API's start, in its log: where it listens, and the database and Prefect server it
    uses, shown without user, password or query (as GET /ready shows them)."""
    settings = get_settings()
    where = listening(sys.argv if argv is None else argv)
    logger.info(
        "API (process %d) %s; database %s; Prefect API %s",
        os.getpid(),
        f"listening on {where}" if where else "started",
        shown_database_url(settings.database_url),
        shown_prefect_url(settings.prefect_api_url),
    )


def listening(argv: list[str]) -> str | None:
    """Where uvicorn's command line (`uvicorn app.main:app --host … --port …`, its UVICORN_*
    variables) has the API listen; None in a process uvicorn's command did not start."""
    program = Path(argv[0]) if argv else Path()
    if program.name != "uvicorn" and program.parts[-2:] != ("uvicorn", "__main__.py"):
        return None
    params = uvicorn_command.make_context("uvicorn", argv[1:], resilient_parsing=True).params
    if params["uds"]:
        return f"unix socket {params['uds']}"
    if params["fd"] is not None:
        return f"file descriptor {params['fd']}"
    host = params["host"]
    scheme = "https" if params["ssl_keyfile"] else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{params['port']}"
