"""The Idempotency-Key header as its client wrote it: one value, 1 to 200 characters, read as
UTF-8 (curl, httpx) or, when it is not UTF-8, as latin-1 (browsers' fetch, Python's http.client
and requests send a header's text so).

HTTP hands a header's bytes over as latin-1: 200 characters of "é" counted as 400 and a key
reused was echoed as mojibake ('clÃ©'). A second Idempotency-Key header was dropped unseen, and
a proxy merging the two makes a third key ("one, two"): two are refused.
"""

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError

from app.idempotency import MAX_KEY_LENGTH

NAME = "Idempotency-Key"


def _refused(kind: str, message: str, sent: Any) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("header", NAME), "msg": message, "type": kind, "input": sent}]
    )


def _key(
    request: Request,
    _: Annotated[
        str | None,
        Header(
            alias=NAME,
            description="Repeat a request safely: the same key returns the same pipeline/run. "
            f"One header, 1 to {MAX_KEY_LENGTH} characters (UTF-8, else latin-1).",
            json_schema_extra={"minLength": 1, "maxLength": MAX_KEY_LENGTH},
        ),
    ] = None,
) -> str | None:
    """The key the request sent, if any (a 422 naming the header otherwise)."""
    sent = [value for name, value in request.scope["headers"] if name == b"idempotency-key"]
    if not sent:
        return None
    if len(sent) > 1:
        raise _refused(
            "multiple_values",
            f"sent {len(sent)} times; send one {NAME} header with one key",
            None,
        )
    try:
        key = sent[0].decode("utf-8")
    except UnicodeDecodeError:  # browsers' fetch and http.client send a str header as latin-1
        key = sent[0].decode("latin-1")
    if not key:
        raise _refused("string_too_short", "empty; send a key, or no header", key)
    if len(key) > MAX_KEY_LENGTH:
        raise _refused(
            "string_too_long",
            f"{len(key):,} characters long; send at most {MAX_KEY_LENGTH}",
            None,
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(_key)]
