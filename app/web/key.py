"""The dashboard's API key, kept by the browser in a cookie only the server sets: HttpOnly, so no
script reads it (cookies are per host, not per port: any page of another port of this host could),
and only this service's own pages may set or forget it."""

from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, field_validator

from app.api.auth import API_KEY_COOKIE, SameOrigin, is_api_key
from app.api.middleware.root_path import root_path
from app.config import get_settings

# a browser keeps a cookie of up to 4,096 bytes, name and attributes included; it drops a longer
# one without a word, and the reader would be asked for the key again and again
MAX_COOKIE_VALUE_BYTES = 3_000

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[SameOrigin])


class KeyIn(BaseModel):
    """The key the dashboard's reader entered."""

    model_config = ConfigDict(extra="forbid")

    key: str

    @field_validator("key")
    @classmethod
    def _one_of_the_keys(cls, value: str) -> str:
        """A key the API takes, checked now: a wrong one, saved, failed only at the next write."""
        value = value.strip()  # the service strips its API_KEYS too
        if not value:
            raise ValueError("enter one of the server's API_KEYS")
        if len(_encoded(value)) > MAX_COOKIE_VALUE_BYTES:
            raise ValueError(
                f"longer than a browser keeps in a cookie ({MAX_COOKIE_VALUE_BYTES:,} bytes "
                "URL-encoded); use a shorter API key"
            )
        if not get_settings().api_keys:
            raise ValueError("this server has no API keys (API_KEYS is unset): none is needed")
        if not is_api_key(value):
            raise ValueError("not one of this server's API keys; check it against API_KEYS")
        return value


def _encoded(key: str) -> str:
    """The key as the cookie holds it: URI-encoded (app/api/auth.py decodes it)."""
    return quote(key, safe="")


def _https(request: Request) -> bool:
    """Whether the page is served over https: the request's scheme, or behind a TLS-terminating
    proxy the page's Origin (or Referer)."""
    page = request.headers.get("origin") or request.headers.get("referer") or ""
    return request.url.scheme == "https" or urlsplit(page).scheme == "https"


# A session cookie (no expiry: gone when the browser closes) for the whole service (under the prefix
# a proxy serves it at: the host's other applications never get it), Secure over https. Lax, so
# that a link from elsewhere opens the pages signed in; a write counts it only when its Origin is
# this service's own (app/api/auth.py).
@router.post("/key", status_code=status.HTTP_204_NO_CONTENT)
async def save_key(request: Request, body: KeyIn) -> Response:
    """Keep the key for this browser session (answered with its Set-Cookie)."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.set_cookie(
        API_KEY_COOKIE,
        _encoded(body.key),
        path=_service_path(request),
        secure=_https(request),
        httponly=True,
        samesite="lax",
    )
    _forget_others(request, response)
    return response


def _forget_others(request: Request, response: Response) -> None:
    """Expire cookies of the key's name a page of another port or subdomain set for this host's
    domain or a parent's (`Domain=`): the browser would send them beside the server's, which
    the API then takes for no key. Not for an address or a single-label host (`localhost`),
    which has no such cookies: there `Domain=` would name the server's own."""
    host = (urlsplit(f"//{request.headers.get('host', '')}").hostname or "").rstrip(".")
    if "." not in host or host.replace(".", "").isdigit() or ":" in host:
        return
    labels = host.split(".")
    for start in range(len(labels) - 1):
        response.delete_cookie(API_KEY_COOKIE, path="/", domain=".".join(labels[start:]))


@router.delete("/key", status_code=status.HTTP_204_NO_CONTENT)
async def forget_key(request: Request) -> Response:
    """Forget the saved key."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        API_KEY_COOKIE,
        path=_service_path(request),
        secure=_https(request),
        httponly=True,
        samesite="lax",
    )
    _forget_others(request, response)
    return response


def _service_path(request: Request) -> str:
    return root_path(request.scope) or "/"
