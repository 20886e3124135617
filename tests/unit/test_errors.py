"""Error responses: one shape (`message` for a person, `detail` as FastAPI has it) for every error;
a value the database refuses is the request's fault, not an outage."""

import httpx
from fastapi import FastAPI, HTTPException
from sqlalchemy.exc import DataError

from app.api.errors import install_error_handlers
from app.service import ConflictError

REFUSED = 'body: the database refused a value (invalid byte sequence for encoding "UTF8": 0x00); change it'


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/refused")
    async def refused() -> None:
        raise DataError(
            "INSERT", {}, ValueError('invalid byte sequence for encoding "UTF8": 0x00\nmore')
        )

    @app.post("/conflict")
    async def conflict() -> None:
        raise ConflictError("pipeline 7 has a run in flight; cancel it first")

    @app.get("/locked")
    async def locked() -> None:
        raise HTTPException(401, "an API key is needed", headers={"WWW-Authenticate": "Bearer"})

    @app.post("/count")
    async def count(record_count: int) -> None:
        return None

    return app


async def _call(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_a_value_the_database_refuses_is_a_422_not_database_unavailable() -> None:
    response = await _call("POST", "/refused")
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": REFUSED,
            "detail": [{"loc": ["body"], "msg": REFUSED, "type": "database_refused"}],
        },
    )


async def test_every_error_has_a_message_and_keeps_its_headers() -> None:
    conflict, locked, unknown, wrong_method = [
        await _call("POST", "/conflict"),
        await _call("GET", "/locked"),
        await _call("GET", "/nowhere"),
        await _call("DELETE", "/locked"),
    ]
    conflicted = "pipeline 7 has a run in flight; cancel it first"
    assert (conflict.status_code, conflict.json()) == (
        409,
        {"message": conflicted, "detail": conflicted},
    )
    assert (locked.status_code, locked.json(), locked.headers["www-authenticate"]) == (
        401,
        {"message": "an API key is needed", "detail": "an API key is needed"},
        "Bearer",
    )
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"message": "Not Found", "detail": "Not Found"},
    )
    not_allowed = "DELETE is not allowed on this path; it allows GET"  # no HEAD: no HeadAsGet
    assert (wrong_method.status_code, wrong_method.json(), wrong_method.headers["allow"]) == (
        405,
        {"message": not_allowed, "detail": not_allowed},
        "GET",
    )


async def test_a_validation_error_names_the_field_in_its_message() -> None:
    response = await _call("POST", "/count?record_count=many")
    assert (response.status_code, response.json()["message"]) == (
        422,
        'record_count: must be a whole number, like 1000; got "many"',
    )
