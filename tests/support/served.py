"""The app over HTTP: uvicorn in the test's event loop on a free port, for clients in another
process (the installed `pipeline` command) or that need a real address (this service as a wrong
PREFECT_API_URL)."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

from app.main import create_app


@asynccontextmanager
async def serve_app(app: ASGIApp | None = None, *, root_path: str = "") -> AsyncIterator[str]:
    """The app (or `app`) served until the block ends, under uvicorn's `root_path`; its base
    URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = uvicorn.Config(
        app or create_app(), lifespan="off", log_level="warning", root_path=root_path
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()
