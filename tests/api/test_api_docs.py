"""The API's docs page, /docs, served whole by the service: FastAPI's own page loads Swagger UI
from cdn.jsdelivr.net, and a machine without the internet showed a blank page. In a real browser
(Debian's headless Chromium) against the app served from this process, and over ASGI."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.api import test_dashboard_scripts as scripts
from tests.conftest import Configure

pytestmark = scripts.pytestmark  # one backend is enough: the page reads no rows
dashboard = scripts.dashboard

SWAGGER_UI = "/static/swagger-ui"
# the page's inline script may run (by its hash), nothing else inline; images from data: URLs
POLICY = re.compile(
    r"default-src 'self'; script-src 'self' 'sha256-[A-Za-z0-9+/]{43}='; "
    r"style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    r"frame-ancestors 'none'; base-uri 'none'"
)


async def test_the_docs_page_names_only_this_services_urls(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert re.findall(r'(?:src|href)="([^"]*)"', response.text) == [
        f"{SWAGGER_UI}/swagger-ui.css",
        "/static/favicon.svg",
        f"{SWAGGER_UI}/swagger-ui-bundle.js",
    ]
    assert re.findall(r"url: '([^']*)'", response.text) == ["/openapi.json"]
    assert "http" not in response.text  # no absolute URL at all
    assert POLICY.fullmatch(response.headers["content-security-policy"])
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_docs_assets_are_swagger_ui_5_served_from_static(
    client: httpx.AsyncClient,
) -> None:
    script = await client.get(f"{SWAGGER_UI}/swagger-ui-bundle.js")
    assert (script.status_code, script.headers["content-type"]) == (
        200,
        "text/javascript; charset=utf-8",
    )
    assert re.findall(r'PACKAGE_VERSION:"(\d+)\.', script.text) == ["5"]
    style = await client.get(f"{SWAGGER_UI}/swagger-ui.css")
    assert (style.status_code, style.headers["content-type"]) == (200, "text/css; charset=utf-8")
    licence = await client.get(f"{SWAGGER_UI}/LICENSE")
    assert (licence.status_code, licence.text.split("\n")[1].strip()) == (
        200,
        "Apache License",
    )


async def test_redoc_is_off_and_the_oauth2_redirect_page_is_served(
    client: httpx.AsyncClient,
) -> None:
    """ReDoc's bundle loads its logo from cdn.redoc.ly whatever it is told: it is not served."""
    assert (await client.get("/redoc")).status_code == 404
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "http" not in redirect.text
    assert POLICY.fullmatch(redirect.headers["content-security-policy"])


async def test_the_docs_page_is_refused_at_a_name_that_is_not_this_services(
    client: httpx.AsyncClient,
) -> None:
    """It needs no key: as every such request, only at this service's own names (DNS
    rebinding, app/api/middleware/hosts.py)."""
    response = await client.get("/docs", headers={"host": "evil.example:8000"})
    assert response.status_code == 403
    assert (await client.head("/docs")).status_code == 200


@pytest.fixture
async def page(browser: Browser, dashboard: str) -> AsyncIterator[tuple[Page, list[str]]]:
    """A tab, and every request it sends (whether it reaches anything or not)."""
    context = await browser.new_context(base_url=dashboard, viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    console: list[str] = []
    tab.on("pageerror", lambda error: console.append(f"script error: {error}"))
    tab.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    yield tab, requested
    await context.close()
    assert console == []  # a load the Content-Security-Policy blocked would be logged here


@pytest.mark.parametrize(
    "keys", [{}, {"API_KEYS": "alpha", "API_KEYS_FOR_READS": "true"}], ids=["open", "keyed"]
)
async def test_the_docs_page_shows_the_operations_and_tries_one_without_the_internet(
    page: tuple[Page, list[str]], dashboard: str, configure: Configure, keys: dict[str, str]
) -> None:
    tab, requested = page
    await configure(**keys)
    await tab.goto("/docs")
    schedule = tab.locator(
        ".opblock-summary-path", has_text="/api/pipelines/{pipeline_id}/schedule"
    )
    await expect(schedule.first).to_be_visible()
    await expect(tab.locator(".opblock")).to_have_count(22)

    health = tab.locator("#operations-health-health_health_get")
    await health.locator(".opblock-summary").click()
    await health.get_by_role("button", name="Try it out").click()
    await health.get_by_role("button", name="Execute").click()
    await expect(
        health.locator(".live-responses-table tbody .response-col_status").first
    ).to_have_text("200")
    await expect(health.locator(".live-responses-table pre.microlight").first).to_have_text(
        '{\n  "status": "ok"\n}'
    )
    paths = [url.removeprefix(dashboard) for url in requested]
    assert [url for url in requested if not url.startswith(f"{dashboard}/")] == []
    assert set(paths) == {  # (the browser may ask for the favicon more than once)
        "/docs",
        "/health",
        "/openapi.json",
        "/static/favicon.svg",
        f"{SWAGGER_UI}/swagger-ui-bundle.js",
        f"{SWAGGER_UI}/swagger-ui.css",
    }
