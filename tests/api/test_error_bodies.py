"""Error bodies in the one promised shape, {message, detail}, also when nothing named the error:
a bug of ours (500), a client gone mid-body."""

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from starlette.types import Message

from app import service
from app.db import get_sessionmaker
from app.main import create_app
from app.models import Pipeline
from app.pipeline.store import uploads_dir


@pytest.fixture
async def lenient(database: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a server runs it: an exception it re-raises after answering is not the test's."""
    transport = httpx.ASGITransport(app=create_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_an_unexpected_error_is_a_json_500_with_its_traceback_logged(
    lenient: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(**_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "list_pipelines", broken)
    with caplog.at_level(logging.ERROR, logger="app.api.errors"):
        response = await lenient.get("/api/pipelines")
    message = "internal error (RuntimeError); the service's log has its traceback"
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        500,
        "application/json",
        {"message": message, "detail": message},
    )
    [record] = [r for r in caplog.records if r.name == "app.api.errors"]
    assert record.getMessage() == "unhandled RuntimeError in GET /api/pipelines"
    assert record.exc_info is not None and str(record.exc_info[1]) == "a bug"
    # uvicorn's own "Exception in ASGI application" of it, with no trace, is not logged again
    server_log = logging.getLogger("uvicorn.error")
    again = server_log.makeRecord(
        server_log.name,
        logging.ERROR,
        __file__,
        1,
        "Exception in ASGI application",
        (),
        record.exc_info,
    )
    other = server_log.makeRecord(
        server_log.name,
        logging.ERROR,
        __file__,
        1,
        "Exception in ASGI application",
        (),
        (RuntimeError, RuntimeError("another"), None),
    )
    assert (server_log.filter(again), bool(server_log.filter(other))) == (False, True)


async def _cut_off(content_type: bytes, body: bytes) -> list[Message]:
    """A request whose client disconnects after the first part of its body: what the app sent."""
    received: list[Message] = [
        {"type": "http.request", "body": body, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return received.pop(0) if received else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/pipelines",
        "raw_path": b"/api/pipelines",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", content_type)],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await create_app()(scope, receive, send)  # raised ClientDisconnect for an upload
    return sent


async def test_a_client_gone_mid_upload_leaves_nothing_and_no_error(database: str) -> None:
    before = sorted(uploads_dir().iterdir()) if uploads_dir().exists() else []
    form = (
        b'--BND\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n'
        b'--BND\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nid,name'
    )
    json_body = b'{"name": "x'
    message = "body: the client disconnected before sending all of it"
    for content_type, body in (
        (b"multipart/form-data; boundary=BND", form),
        (b"application/json", json_body),
    ):
        start, end = await _cut_off(content_type, body)
        assert (start["type"], start["status"]) == ("http.response.start", 400)
        assert json.loads(end["body"]) == {"message": message, "detail": message}
    assert sorted(uploads_dir().iterdir()) == before
    async with get_sessionmaker()() as session:
        assert await session.scalar(select(func.count()).select_from(Pipeline)) == 0
