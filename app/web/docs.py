"""The API's docs page, /docs (Swagger UI), with its script and stylesheet served from /static:
FastAPI's own page loads them from a CDN, and is blank on a machine without the internet."""

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from app.api.middleware.root_path import root_path
from app.web.pages import HEADERS

DOCS_URL = "/docs"
# swagger-ui-dist from npm, as released: app/web/static/swagger-ui/README.md says how to update it
SWAGGER_UI = "swagger-ui"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _policy(page: bytes) -> str:
    """The dashboard's Content-Security-Policy, plus what Swagger UI needs: the page's inline
    scripts (FastAPI writes Swagger UI's settings into the page), allowed by their hashes, and
    the data: images of its stylesheet."""
    scripts = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
    )


def _served(page: HTMLResponse) -> HTMLResponse:
    page.headers.update({**HEADERS, "Content-Security-Policy": _policy(bytes(page.body))})
    return page


def install(app: FastAPI) -> None:
    """/docs and its OAuth2 redirect page, as FastAPI serves them but from this service alone.
    The app is made with docs_url=None and redoc_url=None: FastAPI's own pages use a CDN, and
    ReDoc's bundle loads its logo from the internet whatever it is told."""
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or f"{DOCS_URL}/oauth2-redirect"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = root_path(request.scope)
        static = request.url_for("static", path="").path  # with the root path
        return _served(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=root + redirect_url,
                swagger_js_url=f"{static}{SWAGGER_UI}/swagger-ui-bundle.js",
                swagger_css_url=f"{static}{SWAGGER_UI}/swagger-ui.css",
                swagger_favicon_url=f"{static}favicon.svg",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _served(get_swagger_ui_oauth2_redirect_html())
