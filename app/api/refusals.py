"""The errors any request can get before its route runs, in every operation of the OpenAPI
document: BodySizeLimit (middleware/limits.py) refuses a body too large (413) or content-coded (415)
whatever the method, a GET's too."""

from typing import Any

from fastapi import FastAPI

from app.api.schemas import openapi_error

BODY_REFUSALS = (413, 415)


def declare_body_refusals(app: FastAPI) -> None:
    """Have `app.openapi()` list 413 and 415 under each operation (FastAPI's documented way to
    extend the document: replace `app.openapi`), each route's own description kept."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in build()["paths"].values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    for code in BODY_REFUSALS:
                        responses.setdefault(str(code), openapi_error(code))
                    operation["responses"] = dict(sorted(responses.items()))
        assert app.openapi_schema is not None  # build() keeps what it built
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
