"""API keys: when API_KEYS is set, mutating endpoints (and reads, if configured) need one."""

import hmac
from typing import Annotated
from urllib.parse import unquote

from fastapi import Cookie, Depends, Header, HTTPException, status

from app.config import get_settings

_MISSING = (
    "this endpoint needs an API key: send it as 'X-API-Key: <key>' or "
    "'Authorization: Bearer <key>' (keys are configured in API_KEYS)"
)


def _presented(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _check(presented: str | None) -> None:
    keys = get_settings().api_keys
    if not keys:
        return
    if presented is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, _MISSING, headers={"WWW-Authenticate": "Bearer"}
        )
    matched = False
    for key in keys:  # every key is compared, in constant time, whatever matches first
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    if not matched:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API key is not valid; check the key you send against API_KEYS",
            headers={"WWW-Authenticate": "Bearer"},
        )


XApiKey = Annotated[str | None, Header(alias="X-API-Key", include_in_schema=False)]
AuthorizationHeader = Annotated[str | None, Header(include_in_schema=False)]
# The dashboard keeps the key in this session cookie (URI-encoded) so that page loads and download
# links carry it. It counts for reads only: writes need the header, so no other site can forge one.
API_KEY_COOKIE = "pipeline_api_key"
ApiKeyCookie = Annotated[str | None, Cookie(alias=API_KEY_COOKIE, include_in_schema=False)]


async def require_key(x_api_key: XApiKey = None, authorization: AuthorizationHeader = None) -> None:
    """For mutating endpoints: a valid key whenever API_KEYS is set."""
    _check(_presented(x_api_key, authorization))


async def require_read_key(
    x_api_key: XApiKey = None,
    authorization: AuthorizationHeader = None,
    cookie_key: ApiKeyCookie = None,
) -> None:
    """For read endpoints: a valid key (header, or the dashboard's cookie) when API_KEYS is set
    and API_KEYS_FOR_READS is true."""
    if get_settings().api_keys_for_reads:
        _check(
            _presented(x_api_key, authorization) or (unquote(cookie_key) if cookie_key else None)
        )


WriteAccess = Depends(require_key)
ReadAccess = Depends(require_read_key)
