"""A run's file as it is downloaded, and how a download that stops early is logged: a disk error
once the response has started (EIO mid-file) as the file and the OS error, a client that went away
as that. Starlette logged the first only as "Caught handled exception, but response already
started" (the status line has gone, no error answer can follow, the client's copy is cut short
whatever is logged), and the second not at all."""

import logging
from pathlib import Path
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from app.api.served import ServedFile

logger = logging.getLogger(__name__)


class RunDownload(ServedFile):
    """ServedFile naming, when it stops before its end, the run's file (`shown`, not the second
    name it is served from), how far the download got and why."""

    def __init__(self, path: Path, *, shown: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.shown = shown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, sent, complete, gone = False, 0, False, False

        async def sending(message: Message) -> None:
            nonlocal started, sent, complete, gone
            try:
                await send(message)
            except BaseException:  # the client went away (cancelled, or the server's OSError)
                gone = True
                raise
            started = started or message["type"] == "http.response.start"
            sent += len(message.get("body", b""))
            complete = complete or message.get("more_body") is False  # no read is left to fail

        try:
            await super().__call__(scope, receive, sending)
        except OSError as exc:
            if gone:  # a server of ASGI 2.4 raises it from send once the client has gone
                self._log_gone(sent)
                return
            if not started or complete:
                raise
            # the server closes the connection: the client sees a body shorter than its length
            logger.error(
                "download of %s stopped after %s bytes: reading the file failed (%s); the "
                "client's copy is cut short",
                self.shown,
                f"{sent:,}",
                exc,
            )
            return
        if started and not complete:  # Starlette stopped sending on the client's disconnect
            self._log_gone(sent)

    def _log_gone(self, sent: int) -> None:
        logger.warning(
            "download of %s stopped after %s bytes: the client closed the connection",
            self.shown,
            f"{sent:,}",
        )
