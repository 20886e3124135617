"""Error responses: a value the database refuses is the request's fault, not an outage."""

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import DataError

from app.api.errors import install_error_handlers


async def test_a_value_the_database_refuses_is_a_422_not_database_unavailable() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/refused")
    async def refused() -> None:
        raise DataError(
            "INSERT", {}, ValueError('invalid byte sequence for encoding "UTF8": 0x00\nmore')
        )

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/refused")
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": "body: the database refused a value (invalid byte sequence for encoding "
            '"UTF8": 0x00); change it'
        },
    )
