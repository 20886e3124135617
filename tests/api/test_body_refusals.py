"""Every operation the OpenAPI document lists declares the 413 and 415 BodySizeLimit answers it,
and answers them: a GET with a body too large was a 413 its schema did not declare."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport

from app.main import create_app
from tests.conftest import SetSetting


@pytest.fixture
async def app_client(setting: SetSetting) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The API in-process: refused before any route, no request reaches the database."""
    setting("PIPELINE_MAX_BODY_BYTES", "16")
    app = create_app()
    async with httpx.AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c:
        yield app, c


async def test_each_operation_declares_and_answers_413_and_415(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    answered = {}
    for path, operations in app.openapi()["paths"].items():
        url = path.replace("{pipeline_id}", "1").replace("{run_id}", "1")
        for method, operation in operations.items():
            large = await client.request(method.upper(), url, content=b"{}" + b" " * 15)
            coded = await client.request(
                method.upper(), url, content=b"{}", headers={"Content-Encoding": "gzip"}
            )
            declared = sorted(code for code in operation["responses"] if code in ("413", "415"))
            answered[f"{method.upper()} {path}"] = (
                large.status_code,
                coded.status_code,
                declared,
            )
    assert len(answered) == 22
    assert answered == dict.fromkeys(answered, (413, 415, ["413", "415"]))
    assert large.json()["message"] == (
        "request body larger than 16 bytes (PIPELINE_MAX_BODY_BYTES); send a smaller body"
    )
