"""DNS rebinding: a page of http://evil.example:8000 whose name is then pointed at this service is,
to the browser, on its own origin. It may read every answer and send any write, with an Origin
that matches its Host; only the name it was sent to tells it apart. A request this service
answers without a key goes through only to its own names."""

import html
import ipaddress

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.middleware.root_path import route_path
from app.config import get_settings

SETTING = "PIPELINE_ALLOWED_HOSTS"
# Liveness: open to all, it answers that the process runs and nothing else; probes may use any name.
OPEN_PATHS = frozenset({"/health"})
_READS = frozenset({"GET", "HEAD"})
_HEADERS = {b"host": "Host", b"x-forwarded-host": "X-Forwarded-Host"}


class AllowedHosts:
    """Pure ASGI middleware: a request the service would answer without an API key is refused
    (403) unless its Host and every X-Forwarded-Host entry (a client may send that one too) name
    an IP address, localhost or a *.localhost name, or one of PIPELINE_ALLOWED_HOSTS. A request
    that needs a key is the key's to guard: a rebinding page has none to send (the browser keeps
    the dashboard's cookie for the service's own name, not the page's), so keyed deployments
    behind a domain name need no list."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _needs_no_key(scope) and (refused := _refusal(scope)):
            response: Response = JSONResponse({"message": refused, "detail": refused}, 403)
            if _wants_a_page(scope):  # a person who typed the address: a page, not JSON
                response = HTMLResponse(REFUSED_PAGE.format(html.escape(refused)), 403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not this service's name</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>Not this service's name</h1><p>{}</p></body></html>
"""


def _wants_a_page(scope: Scope) -> bool:
    """A browser's navigation (Accept: text/html) to the dashboard's pages, not to the API."""
    accept = next((value for name, value in scope["headers"] if name == b"accept"), b"")
    return b"text/html" in accept and not route_path(scope).startswith("/api/")


def _needs_no_key(scope: Scope) -> bool:
    """Whether this request is answered without a key: any, without API_KEYS; a read, unless
    API_KEYS_FOR_READS; /health, always (and it is not checked)."""
    if route_path(scope) in OPEN_PATHS:
        return False
    settings = get_settings()
    return not settings.api_keys or (scope["method"] in _READS and not settings.api_keys_for_reads)


def _refusal(scope: Scope) -> str | None:
    """Why this request is refused: the first name it was sent to that is not this service's."""
    allowed = get_settings().allowed_hosts
    for header, value in scope["headers"]:
        if (shown := _HEADERS.get(header)) is None:
            continue
        text = value.decode("latin-1")
        for sent in text.split(",") if header == b"x-forwarded-host" else (text,):
            address = sent.strip()  # empty: no browser sends a request without its Host
            if address and not host_allowed(address, allowed):
                return _refused(shown, address)
    return None


def host_allowed(address: str, allowed: frozenset[str]) -> bool:
    """Whether 'host[:port]' is an IP address, localhost or a *.localhost name (no DNS answer
    can re-point those), or in `allowed`: a name, '.example.com' for it and its subdomains,
    '*.example.com' for its subdomains (Starlette's TrustedHostMiddleware writes them so), '*' for
    any. Ports are not compared: the browser sends a rebinding page's to the same port."""
    if "*" in allowed:
        return True
    name = _name(address)
    if name is None:
        return False
    if _is_ip(name) or name == "localhost" or name.endswith(".localhost") or name in allowed:
        return True
    return any(
        name.endswith(entry) or name == entry[1:]  # .example.com: it and its subdomains
        if entry[0] == "."
        else entry.startswith("*.") and name.endswith(entry[1:])  # *.example.com: subdomains
        for entry in allowed
    )


def _name(address: str) -> str | None:
    """The name or IP address of 'host[:port]' as a Host header writes it, lowercase, without a
    trailing dot; None if it is none (an IPv6 address is in brackets, and only one is)."""
    address = address.lower()
    if address.startswith("["):
        inside, closed, port = address[1:].partition("]")
        ipv6 = ":" in inside and _is_ip(inside)
        return inside if closed and ipv6 and port[:1] in ("", ":") else None
    return address.partition(":")[0].removesuffix(".") or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _refused(header: str, address: str) -> str:
    address = address[:200]
    name = _name(address) or address
    return (
        f"refused: {header} {address} is not one of this service's names (IP addresses, "
        f"localhost, {SETTING}): a page whose DNS name was pointed at this service could use "
        f"it without an API key; if {name} is this service's name, add it to {SETTING}"
    )
