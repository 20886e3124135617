"""A download the client stops midway (app/api/downloads.py): one line of ours naming the file and
how far it got, and no error of uvicorn's — over a real uvicorn, and as the ASGI messages of a
server that cancels the response (uvicorn's HTTP protocols, ASGI 2.3) or raises OSError from
send (an ASGI 2.4 server)."""

import asyncio
import logging
import re
import shutil
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import Message

from app.api.downloads import RunDownload
from app.main import create_app
from app.models import Status
from app.pipeline.store import RunFiles, runs_dir
from tests.api.test_results import add_run
from tests.support.stages import run_stages_on

HEADER = "id,name,category,value,quantity,is_active,created_at\n"
ROWS = 100_000  # results.csv of about 8 MB: more than the socket buffers hold
CHUNK = 64 * 1024  # what FileResponse sends at once


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
async def api(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    """The API over HTTP with `request.param`'s protocol, run 1 of pipeline 1 completed: the
    server (to see when the requests it took have ended) and its URL."""
    shutil.rmtree(runs_dir(), ignore_errors=True)
    source = tmp_path / "input.csv"
    source.write_text(
        HEADER + "".join(f"{i},n{i},A,10,1,true,2026-03-01\n" for i in range(1, ROWS + 1))
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = uvicorn.Config(create_app(), lifespan="off", log_level="warning", http=request.param)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/api/pipelines", json={"name": "p"})
        run_stages_on(await add_run(1, Status.COMPLETED), source, "csv")
        yield server, url
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def _cut_download(url: str) -> None:
    """GET the results as CSV, read the head and a little of the body, then reset the
    connection, as a client stopped midway; a small receive buffer keeps the server mid-body."""
    host, port = url.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    reader, writer = await asyncio.open_connection(sock=raw)
    writer.write(
        b"GET /api/pipelines/1/runs/1/output?format=csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    await reader.readexactly(1000)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    writer.close()


@pytest.mark.parametrize("api", ["app.serving:BoundedHttpTools", "h11"], indirect=True)
async def test_a_download_the_client_cuts_is_one_line_of_ours(
    api: tuple[uvicorn.Server, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing was logged: the cut could not be told from a download that completed."""
    server, url = api
    async with httpx.AsyncClient(base_url=url) as client:  # converted once, before the cut
        whole = await client.get("/api/pipelines/1/runs/1/output", params={"format": "csv"})
    results = RunFiles.for_run(1).results.with_suffix(".csv").resolve()
    assert len(whole.content) == results.stat().st_size
    uvicorn_lines = _Lines()
    logging.getLogger("uvicorn.error").addHandler(uvicorn_lines)
    try:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            await _cut_download(url)
            for _ in range(3000):  # until uvicorn has seen the reset and the request has ended
                if not server.server_state.tasks:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the cut download's request was still running after 30 s")
            async with httpx.AsyncClient(base_url=url) as client:  # still serving
                assert (await client.get("/health")).status_code == 200
    finally:
        logging.getLogger("uvicorn.error").removeHandler(uvicorn_lines)
    ours = [r.getMessage() for r in caplog.records if r.name == "app.api.downloads"]
    assert len(ours) == 1, ours
    stopped = re.fullmatch(
        rf"download of {re.escape(str(results))} stopped after ([\d,]+) bytes: the client closed "
        "the connection",
        ours[0],
    )
    assert stopped is not None, ours[0]
    sent = int(stopped[1].replace(",", ""))
    assert sent % CHUNK == 0 and sent < results.stat().st_size  # whole chunks, not the file
    assert uvicorn_lines.lines == []  # no "ASGI callable returned without completing response"


# --------------------------------------------------------------------------- as ASGI messages


def _download(tmp_path: Path) -> tuple[RunDownload, Path]:
    path = tmp_path / "results.csv"
    path.write_bytes(b"x" * (3 * CHUNK))
    return RunDownload(path, shown=tmp_path / "shown.csv", media_type="text/csv"), path


def _scope(spec_version: str) -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [],
        "asgi": {"version": "3.0", "spec_version": spec_version},
    }


async def test_a_cancelled_response_is_logged_as_the_client_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn (ASGI 2.3): Starlette reads http.disconnect and cancels the sending; the client
    stopped reading at the second chunk, then went."""
    response, _ = _download(tmp_path)
    bodies: list[bytes] = []
    second = asyncio.Event()

    async def receive() -> Message:
        await second.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            if len(bodies) == 2:
                second.set()
                await asyncio.Event().wait()  # the client's window stays shut

    with caplog.at_level(logging.WARNING):
        await response(_scope("2.3"), receive, send)
    assert [r.getMessage() for r in caplog.records] == [
        f"download of {tmp_path / 'shown.csv'} stopped after 65,536 bytes: the client closed "
        "the connection"
    ]


async def test_a_send_that_raises_oserror_is_the_client_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An ASGI 2.4 server raises OSError from send once the client has gone; it reached the
    server as an exception of the app ("Exception in ASGI application", a traceback)."""
    response, _ = _download(tmp_path)
    bodies: list[bytes] = []

    async def receive() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("not asked: an ASGI 2.4 server says so from send")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            if len(bodies) == 3:
                raise OSError("client disconnected")

    with caplog.at_level(logging.WARNING):
        await response(_scope("2.4"), receive, send)
    assert [r.getMessage() for r in caplog.records] == [
        f"download of {tmp_path / 'shown.csv'} stopped after 131,072 bytes: the client closed "
        "the connection"
    ]
