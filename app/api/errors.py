"""Error responses a person can act on: which field is wrong and how to fix it; what is down.

Every error body has the same two keys: `message`, one line for a person, and `detail`, as FastAPI
shapes it (a string, or for a 422 the list of problems with their `loc`) for clients built on that.
"""

import contextlib
import email.message
import errno
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from polars.exceptions import PolarsError
from python_multipart.multipart import parse_options_header
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from app.api import field_problems
from app.api.control_chars import escaped
from app.api.middleware.methods import allowed
from app.api.refusals import declare_body_refusals
from app.config import get_settings
from app.idempotency import KeyInUseError, KeyReusedError
from app.pipeline import disk
from app.pipeline.input_files.inputs import InputError
from app.pipeline.orchestrator import PrefectUnavailableError
from app.service import ConflictError

logger = logging.getLogger(__name__)
DISCONNECTED = "body: the client disconnected before sending all of it"
MAX_PROBLEMS = 20  # a 422 lists the first ones: a body of 10,000 unknown fields is no 10,000 lines


class ErrorResponse(JSONResponse):
    """An error's JSON, whatever of the client's text it echoes: an unpaired surrogate a JSON
    body escaped (`{"\\ud800": 1}` sent to trigger) is no UTF-8, and rendering it was a 500; it
    is written as the escape it was sent as."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def _error(
    status_code: int, message: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"message": message, "detail": message if detail is None else detail}
    return ErrorResponse(status_code=status_code, content=body, headers=headers)


def _field(loc: tuple[int | str, ...]) -> str:
    """The field a message names, its control and bidi characters escaped (an unknown key
    `"\\u0000\\u202eabc"` went raw into the message, reordering the text after it)."""
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return escaped(".".join(parts)) or "body"


def _read_as_json(content_type: str) -> bool:
    """Whether FastAPI parses a body of this Content-Type as JSON: application/json and
    application/*+json only (text/json, say, reaches the model as bytes)."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _not_an_object(request: Request, kind: str) -> str:
    """What to send instead of an empty body, or of one that is not a JSON object."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "missing":
        return "empty or null; send a JSON object with Content-Type: application/json"
    if not _read_as_json(content_type):  # FastAPI reads any other type as bytes
        shown = content_type or "none"
        return f"send a JSON object with Content-Type: application/json (this one's is {shown})"
    return "must be a JSON object ({...}), not a list, string or number"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    every = exc.errors()
    errors, more = every[:MAX_PROBLEMS], len(every) - MAX_PROBLEMS
    problems, said = [], []
    for error in errors:
        field, message = (
            _field(tuple(error["loc"])),
            str(error["msg"]).removeprefix("Value error, "),
        )
        if error["type"] == "extra_forbidden":
            message = "unknown field; remove it (see /docs for the accepted fields)"
        elif plain := field_problems.said(error, field):
            message = plain
        elif error["type"] == "json_invalid":
            field, message = "body", f"not valid JSON (error at character {error['loc'][-1]})"
        elif tuple(error["loc"]) == ("body",) and error["type"] in (
            "missing",
            "model_attributes_type",
        ):
            message = _not_an_object(request, error["type"])
        problems.append(f"{field}: {message}")
        said.append(message)
    # each field's own words, the same as the message's (the dashboard shows them by the field)
    detail = [
        {"loc": list(e["loc"]), "msg": msg, "type": e["type"]}
        for e, msg in zip(errors, said, strict=True)
    ]
    if more > 0:
        unlisted = f"and {more:,} more problem{'s' if more > 1 else ''}, not listed"
        problems.append(unlisted)
        detail.append({"loc": [], "msg": unlisted, "type": "more_problems"})
    return _error(422, "; ".join(problems), detail)


async def _input_error(request: Request, exc: Exception) -> JSONResponse:
    """A whole-file problem with an input file: the field, what is wrong and where."""
    assert isinstance(exc, InputError)
    if disk.refusal(exc):  # its scratch copy could not be written: the disk's, not the file's
        return await _storage_refused(request, exc)
    loc = ["body"] if exc.field == "body" else ["body", exc.field]  # the whole body: once
    return _error(422, str(exc), [{"loc": loc, "msg": exc.message, "type": "input_file"}])


async def _prefect_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return _error(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return _error(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"database unavailable ({type(exc).__name__}); "
        "check DATABASE_URL and that the database server is running",
    )


async def _storage_refused(request: Request, exc: Exception) -> JSONResponse:
    """The data directory's disk refused a write (an upload, an input's scratch copy, a
    download's conversion): 507 when it is full, 503 when it is not writable, naming the fix.
    The route has removed what it wrote; any other OS or Polars error stays a 500."""
    refused = disk.refusal(exc)
    if refused is None:  # not the data directory's: on to the 500 of any other error
        raise exc
    where = f"PIPELINE_DATA_DIR ({get_settings().data_dir})"
    if refused.no_space:
        code = status.HTTP_507_INSUFFICIENT_STORAGE
        message = f"{where} is out of space ({refused}); {disk.FREE_SPACE}"
    else:
        code = status.HTTP_503_SERVICE_UNAVAILABLE
        fix = (
            "mount it read-write"
            if refused.code == errno.EROFS
            else f"let the service's user (uid {os.geteuid()}) write to it"
        )
        message = (
            f"{where} is not writable ({refused}); {fix}, or point PIPELINE_DATA_DIR at a "
            "directory the service can write"
        )
    logger.warning("%s %s refused: %s", request.method, request.url.path, message)
    return _error(code, message)


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


def _unparsed_body(request: Request, cause: BaseException | None) -> tuple[str, str] | None:
    """What was wrong with a JSON body FastAPI could not parse for another reason than its
    syntax (its 400 "There was an error parsing the body" names neither the field nor the fix):
    the message and its error type."""
    if isinstance(cause, UnicodeDecodeError):
        _, options = parse_options_header(request.headers.get("content-type", ""))
        charset = options.get(b"charset", b"").decode("latin-1")
        declared = (
            f" (its Content-Type says charset={charset})"
            if charset and charset.lower().replace("-", "") != "utf8"
            else ""
        )
        return f"body: not UTF-8{declared}; send the JSON encoded as UTF-8", "json_not_utf8"
    if isinstance(cause, RecursionError):
        return (
            "body: nested too deeply; send a JSON object of the fields (see /docs)",
            "json_too_deep",
        )
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return (
            f"body: a number of more than {sys.get_int_max_str_digits():,} digits; no field "
            "takes one that long: send each field's value in its range (see /docs)",
            "json_number_too_long",
        )
    return None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own errors (404, 401, 405, 413, …) in the same shape, their headers kept."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        if unparsed := _unparsed_body(request, exc.__cause__):
            message, kind = unparsed
            problem = {"loc": ["body"], "msg": message.removeprefix("body: "), "type": kind}
            return _error(422, message, [problem])
        if isinstance(exc.__cause__, ClientDisconnect):  # nobody reads this answer
            return _error(400, DISCONNECTED)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED and (methods := allowed(request)):
        message = f"{request.method} is not allowed on this path; it allows {', '.join(methods)}"
        return _error(405, message, headers={**(exc.headers or {}), "Allow": ", ".join(methods)})
    return _error(exc.status_code, str(exc.detail), exc.detail, exc.headers)


_LOGGED = "_logged_as_unhandled"


class _LoggedAlready(logging.Filter):
    """Starlette raises a handled 500's exception again for the server to log: uvicorn's second
    traceback of it, outside the request's trace, is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record.exc_info[1] if record.exc_info else None, _LOGGED, False)


_LOGGED_ALREADY = _LoggedAlready()


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    """A bug of ours: the same shape as every other error, and the traceback in the log, once."""
    logger.error(
        "unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc
    )
    with contextlib.suppress(AttributeError):  # an exception type that takes no attributes
        setattr(exc, _LOGGED, True)
    return _error(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        f"internal error ({type(exc).__name__}); the service's log has its traceback",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error in the one shape; the OpenAPI document lists the middleware's too."""
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
    app.add_exception_handler(OSError, _storage_refused)
    app.add_exception_handler(PolarsError, _storage_refused)
    # Starlette answers with this, then raises the exception again for the server to log
    app.add_exception_handler(Exception, _unhandled)
    logging.getLogger("uvicorn.error").addFilter(_LOGGED_ALREADY)
    declare_body_refusals(app)  # 413 and 415, answered before any route, on every operation
