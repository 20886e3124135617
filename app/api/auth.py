"""API keys: when API_KEYS is set, mutating endpoints (and reads, if configured) need one; writes
from another site's or origin's pages are refused, keys or not."""

import hmac
from urllib.parse import unquote, urlsplit

from fastapi import Depends, HTTPException, Request, status

from app.access_settings import DEFAULT_PORTS, origin_of
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


def is_api_key(presented: str) -> bool:
    """Whether `presented` is one of API_KEYS: every key is compared, in constant time, whatever
    matches first."""
    matched = False
    for key in get_settings().api_keys:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    return matched


def _check(presented: str | None) -> None:
    if not get_settings().api_keys:
        return
    if presented is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, _MISSING, headers={"WWW-Authenticate": "Bearer"}
        )
    if not is_api_key(presented):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API key is not valid; check the key you send against API_KEYS",
            headers={"WWW-Authenticate": "Bearer"},
        )


# The dashboard's key, in an HttpOnly session cookie the server sets (app/web/key.py), URI-encoded.
# It counts for reads, and for writes sent by this service's own pages (an Origin or Referer of
# this host): no other page can make a browser send those, nor read the cookie.
API_KEY_COOKIE = "pipeline_api_key"


# The keys are read from the request itself, not declared as Header/Cookie parameters: FastAPI
# validates each declared parameter on every request, and these three were half of the CPU of a
# cached GET /api/pipelines/{id} (bench/service.py). They were never in the OpenAPI schema.
def _header_key(request: Request) -> str | None:
    return _presented(request.headers.get("x-api-key"), request.headers.get("authorization"))


def _cookie_key(request: Request) -> str | None:
    """The dashboard's key from its cookie; None when there is none, or two: a page of another
    port or subdomain of this host can set one of the same name (not read the server's), and
    the browser sends both (saving the key again removes the other, app/web/key.py)."""
    sent = [
        value
        for name, _, value in (part.strip().partition("=") for part in _cookie_header(request))
        if name == API_KEY_COOKIE
    ]
    return unquote(sent[0]) if len(sent) == 1 and sent[0] else None


def _cookie_header(request: Request) -> list[str]:
    return request.headers.get("cookie", "").split(";")


_OWN = ("same-origin", "none")  # the dashboard's own pages; a bookmark or a typed address
_DEFAULT_PORTS = {**DEFAULT_PORTS, "ws": 80, "wss": 443}


def _foreign(sent_by: str) -> HTTPException:
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"refused: this write came from a page of another site or origin ({sent_by}); write "
        "through this service's dashboard, the pipeline CLI or an HTTP client",
    )


def _address(netloc: str, scheme: str) -> tuple[str, int | None] | None:
    """Host and port of 'host[:port]' as a browser or a proxy writes it (None: the scheme's
    default port), or None if it is none. http://h:443 is not https://h."""
    try:
        parts = urlsplit(f"//{netloc.strip()}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is no number, an unclosed [IPv6
        return None
    return (host, None if port == _DEFAULT_PORTS.get(scheme) else port) if host else None


def _own_addresses(request: Request) -> list[str]:
    """Where the browser may have sent the request: Host, and a proxy's X-Forwarded-Host (its
    first entry, the one the browser asked for) with X-Forwarded-Port when it names none."""
    own = [request.headers.get("host", "")]
    if forwarded := request.headers.get("x-forwarded-host", "").split(",")[0].strip():
        own.append(forwarded)
        if port := request.headers.get("x-forwarded-port", "").split(",")[0].strip():
            own.append(f"{forwarded}:{port}")
    return [address for address in own if address]


def _is_own(origin: str, request: Request) -> bool:
    """Whether a page of `origin` is one of this service's: the address the request was sent to
    (a TLS-terminating proxy changes the scheme: a page's default port matches either), or one
    of PIPELINE_TRUSTED_ORIGINS (a proxy that rewrites Host)."""
    try:
        page = urlsplit(origin)
        sent_from = _address(page.netloc, page.scheme)
    except ValueError:
        return False
    if sent_from is None:
        return False
    if origin_of(origin) in get_settings().trusted_origins:
        return True
    own = {_address(address, request.url.scheme) for address in _own_addresses(request)}
    if sent_from[1] is None:  # https://h through a proxy to http://h:443: the page's own port
        own |= {(a[0], None) for a in own if a and a[1] == _DEFAULT_PORTS.get(page.scheme)}
    return sent_from in own


def _page(request: Request) -> tuple[str, str] | None:
    """The page a browser sent this request from, as (header, its origin): Origin, else Referer
    cut to its origin (its path, query and any user-info are nobody else's business)."""
    if (origin := request.headers.get("origin")) is not None:
        return "Origin", origin.strip()
    if referer := request.headers.get("referer"):
        try:
            parts = urlsplit(referer.strip())
        except ValueError:
            return "Referer", "(not a URL)"
        return "Referer", f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return None


def _refuse_foreign(request: Request) -> bool:
    """Refuse a browser's request sent by another site's or origin's page; True when one of this
    service's own pages sent it. Without API keys any page a user opens could otherwise create,
    trigger or cancel pipelines with a plain form (no CORS preflight). Browsers mark the request
    `Sec-Fetch-Site` (`same-site` is refused too: a page on another port of localhost, or another
    subdomain), but only to "potentially trustworthy" addresses (https, localhost): over http to a
    LAN address only `Origin` tells, which every browser sends with a POST, PUT or DELETE (`null`
    from a sandboxed page or a file). Its host[:port] must be the one the request was sent to; the
    scheme is not compared, as a TLS-terminating proxy changes it. Clients (curl, the CLI) send
    neither header and pass.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _OWN:
        raise _foreign(f"Sec-Fetch-Site: {site}")
    page = _page(request)
    if page is None:
        return False
    header, origin = page
    if origin == "null":
        raise _foreign(f"{header}: null, a sandboxed page or a local file")
    if not _is_own(origin, request):
        own = " or ".join(_own_addresses(request))[:200] or "this service"
        raise _foreign(f"{header}: {origin[:200]}, not {own}")
    return True


async def refuse_foreign(request: Request) -> None:
    """For the dashboard's own endpoints that need no key: only its own pages may call them."""
    _refuse_foreign(request)


async def require_key(request: Request) -> None:
    """For mutating endpoints: never a browser's request from another site or origin, and a valid
    key whenever API_KEYS is set: the header, or the dashboard's cookie on a write one of this
    service's own pages sent (its Origin or Referer says so, and no other page can make a browser
    send those)."""
    own_page = _refuse_foreign(request)
    _check(_header_key(request) or (_cookie_key(request) if own_page else None))


async def require_read_key(request: Request) -> None:
    """For read endpoints: a valid key (header, or the dashboard's cookie) when API_KEYS is set
    and API_KEYS_FOR_READS is true."""
    if get_settings().api_keys_for_reads:
        _check(_header_key(request) or _cookie_key(request))


WriteAccess = Depends(require_key)
ReadAccess = Depends(require_read_key)
SameOrigin = Depends(refuse_foreign)
