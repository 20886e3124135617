"""A run's file as it is downloaded: a disk error once the response has started (EIO mid-file) is
logged as what it is, the file and the OS error. Starlette could only log it as "Caught handled
exception, but response already started": the status line has gone, no error answer can follow,
and the client's download is cut short whatever is logged."""

import logging
from pathlib import Path
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from app.api.served import ServedFile

logger = logging.getLogger(__name__)


class RunDownload(ServedFile):
    """ServedFile naming, when reading it fails after the response started, the run's file
    (`shown`, not the second name it is served from) and how far the download got."""

    def __init__(self, path: Path, *, shown: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.shown = shown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, sent, ended = False, 0, False

        async def sending(message: Message) -> None:
            nonlocal started, sent, ended
            try:
                await send(message)
            except BaseException:  # the client went away: not the disk's error
                ended = True
                raise
            started = started or message["type"] == "http.response.start"
            sent += len(message.get("body", b""))
            ended = ended or message.get("more_body") is False  # then no read is left to fail

        try:
            await super().__call__(scope, receive, sending)
        except OSError as exc:
            if not started or ended:
                raise
            # the server closes the connection: the client sees a body shorter than its length
            logger.error(
                "download of %s stopped after %s bytes: reading the file failed (%s); the "
                "client's copy is cut short",
                self.shown,
                f"{sent:,}",
                exc,
            )
