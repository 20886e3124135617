"""API keys: when API_KEYS is set, mutating endpoints (and reads, if configured) need one; writes
from another site's pages are refused, keys or not."""

import hmac
from urllib.parse import unquote

from fastapi import Depends, HTTPException, Request, status

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


# The dashboard keeps the key in this session cookie (URI-encoded) so that page loads and download
# links carry it. It counts for reads only: writes need the header, so no other site can forge one.
API_KEY_COOKIE = "pipeline_api_key"


# The keys are read from the request itself, not declared as Header/Cookie parameters: FastAPI
# validates each declared parameter on every request, and these three were half of the CPU of a
# cached GET /api/pipelines/{id} (bench/service.py). They were never in the OpenAPI schema.
def _header_key(request: Request) -> str | None:
    return _presented(request.headers.get("x-api-key"), request.headers.get("authorization"))


def _cookie_key(request: Request) -> str | None:
    cookie = request.cookies.get(API_KEY_COOKIE)
    return unquote(cookie) if cookie else None


_OWN = ("same-origin", "none")  # the dashboard's own pages; a bookmark or a typed address


def _foreign(site: str) -> str:
    return (
        f"refused: this write came from a page of another site or origin (Sec-Fetch-Site: "
        f"{site}); write through this service's dashboard, the pipeline CLI or an HTTP client"
    )


async def require_key(request: Request) -> None:
    """For mutating endpoints: a valid key whenever API_KEYS is set, and never a browser's
    request from another site. Without keys, any web page a user opens could otherwise create,
    trigger or cancel pipelines with a plain form (no CORS preflight): browsers mark such
    requests, and nothing legitimate sends one (the dashboard is same-origin; clients send none).
    `same-site` is refused too: a page on another port of localhost, or another subdomain, is
    "same-site", and a browser lets it post a form here just the same.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _OWN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, _foreign(site))
    _check(_header_key(request))


async def require_read_key(request: Request) -> None:
    """For read endpoints: a valid key (header, or the dashboard's cookie) when API_KEYS is set
    and API_KEYS_FOR_READS is true."""
    if get_settings().api_keys_for_reads:
        _check(_header_key(request) or _cookie_key(request))


WriteAccess = Depends(require_key)
ReadAccess = Depends(require_read_key)
