"""Error responses a person can act on: which field is wrong and how to fix it; what is down.

Every error body has the same two keys: `message`, one line for a person, and `detail`, as FastAPI
shapes it (a string, or for a 422 the list of problems with their `loc`) for clients built on that.
"""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException

from app.idempotency import KeyInUseError, KeyReusedError
from app.pipeline.inputs import InputError
from app.pipeline.orchestrator import PrefectUnavailableError
from app.service import ConflictError


def _error(
    status_code: int, message: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"message": message, "detail": message if detail is None else detail}
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _not_an_object(request: Request, kind: str) -> str:
    """What to send instead of an empty body, or of one that is not a JSON object."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "missing":
        return "empty or null; send a JSON object with Content-Type: application/json"
    if not content_type.endswith(("/json", "+json")):  # FastAPI reads any other type as text
        shown = content_type or "none"
        return f"send a JSON object with Content-Type: application/json (this one's is {shown})"
    return "must be a JSON object ({...}), not a list, string or number"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = []
    for error in errors:
        field, message = (
            _field(tuple(error["loc"])),
            str(error["msg"]).removeprefix("Value error, "),
        )
        if error["type"] == "extra_forbidden":
            message = "unknown field; remove it (see /docs for the accepted fields)"
        elif error["type"] == "json_invalid":
            field, message = "body", f"not valid JSON (error at character {error['loc'][-1]})"
        elif tuple(error["loc"]) == ("body",) and error["type"] in (
            "missing",
            "model_attributes_type",
        ):
            message = _not_an_object(request, error["type"])
        problems.append(f"{field}: {message}")
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return _error(422, "; ".join(problems), detail)


async def _input_error(_: Request, exc: Exception) -> JSONResponse:
    """A whole-file problem with an input file: the field, what is wrong and where."""
    assert isinstance(exc, InputError)
    return _error(
        422, str(exc), [{"loc": ["body", exc.field], "msg": exc.message, "type": "input_file"}]
    )


async def _prefect_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return _error(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return _error(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"database unavailable ({type(exc).__name__}); "
        "check DATABASE_URL and that the database server is running",
    )


async def _refused_value(_: Request, exc: Exception) -> JSONResponse:
    """A value the API let through but the database cannot store: the request, not an outage."""
    assert isinstance(exc, DataError)
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
    message = f"body: the database refused a value ({reason}); change it"
    return _error(422, message, [{"loc": ["body"], "msg": message, "type": "database_refused"}])


async def _key_reused(_: Request, exc: Exception) -> JSONResponse:
    """An Idempotency-Key repeated with another request: the key names itself in the message."""
    detail = [{"loc": ["header", "Idempotency-Key"], "msg": str(exc), "type": "key_reused"}]
    return _error(422, str(exc), detail)


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return _error(status.HTTP_409_CONFLICT, str(exc))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own errors (404, 401, 405, 413, …) in the same shape, their headers kept."""
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), exc.detail, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(KeyInUseError, _conflict)
    app.add_exception_handler(KeyReusedError, _key_reused)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(PrefectUnavailableError, _prefect_unavailable)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_unavailable)
    app.add_exception_handler(DataError, _refused_value)
    # asyncpg lets a refused connection through unwrapped; Prefect's are wrapped in orchestrator
    app.add_exception_handler(ConnectionError, _database_unavailable)
