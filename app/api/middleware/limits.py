"""Request bodies as the API takes them, refused before they are read into memory: at most so
large (413, naming the limit) and never content-coded (415, naming Content-Encoding)."""

import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.middleware.root_path import route_path
from app.config import get_settings

FORM_OVERHEAD_BYTES = 1024 * 1024  # an upload's form fields and part headers, beside the file


class BodySizeLimit:
    """Pure ASGI middleware: rejects a declared or streamed body larger than its limit
    (PIPELINE_MAX_BODY_BYTES; uploads PIPELINE_MAX_UPLOAD_BYTES), and any Content-Encoding."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def limit(scope: Scope) -> tuple[int, str]:
        """The byte limit of this request and the setting that sets it: file uploads (multipart
        POST /api/pipelines) have their own, the route streams them to disk."""
        settings = get_settings()
        content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
        if (
            scope["method"] == "POST"
            and route_path(scope).rstrip("/") == "/api/pipelines"
            and content_type.startswith(b"multipart/form-data")
        ):
            return settings.max_upload_bytes + FORM_OVERHEAD_BYTES, "PIPELINE_MAX_UPLOAD_BYTES"
        return settings.max_body_bytes, "PIPELINE_MAX_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if coded := _content_coded(scope, headers):
            await _refuse(send, 415, coded, [(b"accept-encoding", b"identity")])
            return
        max_bytes, setting = self.limit(scope)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(send, max_bytes, setting)
            return
        seen = 0
        started = answered = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:  # the 413 went out: what the app says about the cut-off body does not
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def limited_receive() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    # answered here, not where _TooLarge is caught: FastAPI's body parsing
                    # catches what its receive raises and would answer 400 "error parsing"
                    if not (started or answered):
                        answered = True
                        await self._reject(send, max_bytes, setting)
                    raise _TooLarge
            return message

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, send: Send, max_bytes: int, setting: str) -> None:
        message = f"request body larger than {max_bytes:,} bytes ({setting}); send a smaller body"
        await _refuse(send, 413, message)


def _content_coded(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    """Why a body's Content-Encoding is refused, or None for none (or identity): the API reads
    bodies as sent (a gzipped JSON body was "not UTF-8", a br one's header went unheeded).
    `headers`: the request's, as a dict (the last of a repeated one)."""
    if headers.get(b"content-length", b"0") == b"0" and b"transfer-encoding" not in headers:
        return None  # no body: nothing is coded
    sent = [value for name, value in scope["headers"] if name == b"content-encoding"]
    codings = [c.strip() for value in sent for c in value.decode("latin-1").split(",")]
    if all(coding.lower() in ("", "identity") for coding in codings):
        return None
    shown = ", ".join(coding for coding in codings if coding)
    shown = shown if len(shown) <= 40 else f"{shown[:39]}…"
    return (
        f"Content-Encoding: {shown} is not accepted; send the body uncompressed, without "
        "Content-Encoding (a compressed input file is uploaded as the form's file field: "
        ".gz, .bz2 and .xz files are unpacked)"
    )


async def _refuse(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"message": message, "detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
