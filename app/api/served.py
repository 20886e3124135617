"""The response that streams a download: its second name removed once sent, and a Range it cannot
serve refused in the API's error shape."""

import asyncio
import contextlib
from pathlib import Path

from fastapi import HTTPException, status
from fastapi.responses import FileResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

# Starlette's reasons for a 400 to a Range header, as the message says them
_RANGE_REFUSALS = {
    "Malformed range header.": "is not of the form bytes=START-END",
    "Only support bytes range": "is not in bytes",
    "Range header: range must be requested": "names no range",
    "Range header: start must be less than end": "ends before it starts",
}


class ServedFile(FileResponse):
    """A download served from its second name (results._pinned), which it removes however the
    response ends: Starlette answers a Range it cannot serve (400, 416: `curl -C -` on a file
    already whole) without running the background task, and each such request left its hard
    link in serving/. Those answers are errors like the others, {message, detail}, not
    Starlette's plain text."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        shown = repr(http_range if len(http_range) <= 40 else f"{http_range[:39]}…")
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader as exc:
            reason = _RANGE_REFUSALS.get(exc.content, exc.content.lower().rstrip("."))
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"Range: {shown} {reason}; ask for bytes=START-END, or send no Range for the "
                "whole file",
            ) from None
        except RangeNotSatisfiable:
            raise HTTPException(
                status.HTTP_416_RANGE_NOT_SATISFIABLE,
                f"Range: {shown} starts at or past the end of the file ({file_size:,} bytes); "
                "ask for less, or send no Range for the whole file",
                headers={"Content-Range": f"bytes */{file_size}"},
            ) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.background is not None:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(Path(self.path).unlink)
