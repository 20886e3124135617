"""The dashboard's scripts in a real browser (Debian's headless Chromium) against the app served
over HTTP from this process, on the test's database: the key form and its cookie, and the
pipeline page's polling (401s, a log request that hangs, a hidden tab). Prefect is not running,
so the pipeline page's schedule line is answered with no schedules."""

import asyncio
import errno
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.async_api import Browser, Page, Response, Route, expect
from sqlalchemy import update

from app.db import get_sessionmaker
from app.main import create_app
from app.models import PipelineRun, Status
from tests.conftest import Configure
from tests.e2e.browser import armed, fake_clock, fetches
from tests.support.rows import add_pipeline, add_run

# one backend is enough for the browser: the routes under it are tested on both
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# a key was saved, and it is not (or no longer) one of the server's
KEY_REFUSED = "the API key saved for this session was refused: enter a valid one under 'API key'"
REFUSED = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
HIDE = """hidden => {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def _listening_socket() -> socket.socket:
    """A socket on the first free port of 47500-47599, the range these tests may use."""
    for port in range(47500, 47600):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            sock.close()
            if error.errno != errno.EADDRINUSE:
                raise
            continue
        sock.listen()
        return sock
    raise RuntimeError("no free port in 47500-47599")


@pytest.fixture
async def dashboard(database: str) -> AsyncIterator[str]:
    """The app over HTTP (uvicorn, in this event loop), on the test's database; its base URL."""
    sock = _listening_socket()
    config = uvicorn.Config(create_app(), lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    # the socket listens already: the browser's first connection waits in its backlog
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await serving
    sock.close()


@pytest.fixture
def console() -> list[str]:
    """The tab's script errors and failed loads; a test that expects some takes them out."""
    return []


@pytest.fixture
async def page(browser: Browser, dashboard: str, console: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=dashboard, viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    tab.on("pageerror", lambda error: console.append(f"script error: {error}"))
    tab.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    await tab.route("**/api/schedules", lambda route: route.fulfill(json=[]))
    yield tab
    await context.close()
    assert console == []


async def running_pipeline() -> int:
    """A pipeline whose run stays running: nothing here runs it, so the page keeps polling."""
    pipeline_id = await add_pipeline("followed")
    await add_run(pipeline_id, Status.RUNNING, {})
    return pipeline_id


def take_refusals(console: list[str]) -> None:
    """The browser logs each 401 it gets; those, and nothing else, are expected."""
    assert set(console) == {REFUSED}, console
    console.clear()


async def test_a_refused_key_asks_for_a_new_one_once_and_its_message_goes_when_it_works(
    page: Page, configure: Configure, dashboard: str, console: list[str]
) -> None:
    await configure(API_KEYS="alpha", API_KEYS_FOR_READS="true")
    pipeline_id = await running_pipeline()
    await page.context.add_cookies(
        [{"name": "pipeline_api_key", "value": "alpha", "url": dashboard}]
    )
    await page.goto(f"/pipelines/{pipeline_id}")
    await expect(page.locator("#progress")).to_have_attribute("data-status", "running")
    key_field, log_tail = page.locator("#api-key"), page.locator("#log-tail")
    message = page.locator("#action-message")

    def refused_poll(response: Response) -> bool:
        return response.url.endswith("/progress") and response.status == 401

    await configure(API_KEYS="beta", API_KEYS_FOR_READS="true")  # the key was rotated
    await expect(message).to_have_text(KEY_REFUSED)
    await expect(key_field).to_be_focused()  # the first refusal opens the panel and asks
    await log_tail.focus()  # the reader goes on reading the logs
    for _ in range(2):  # more refused polls (every 5 s) while the key is still wrong
        async with page.expect_response(refused_poll, timeout=10_000):
            pass
    await expect(log_tail).to_be_focused()  # the field did not take the keyboard back

    await key_field.fill("beta")
    await key_field.press("Enter")
    await expect(page.locator("#api-key-status")).to_have_text("Key saved for this session.")
    await expect(message).to_have_text("", timeout=10_000)  # the next poll works: message gone

    await log_tail.focus()
    await configure(API_KEYS="gamma", API_KEYS_FOR_READS="true")  # a new streak asks again
    await expect(key_field).to_be_focused(timeout=10_000)
    await expect(message).to_have_text(KEY_REFUSED)
    await page.goto("about:blank")  # no more polls: a refused one could land after the count
    take_refusals(console)


async def test_the_progress_does_not_wait_for_a_hung_log_request_which_gives_up(
    page: Page,
) -> None:
    pipeline_id = await running_pipeline()
    hung: list[Route] = []
    asked = asyncio.Event()

    def hang(route: Route) -> None:  # Prefect, behind the logs, does not answer
        hung.append(route)
        asked.set()

    await page.route(lambda url: urlsplit(url).path.endswith("/logs"), hang)
    await fake_clock(page)  # AbortSignal.timeout too: the log request gives up when it says
    await page.goto(f"/pipelines/{pipeline_id}")
    progress, log_tail = page.locator("#progress"), page.locator("#log-tail")
    await expect(progress).to_have_attribute("data-status", "running")
    await asyncio.wait_for(asked.wait(), 10)
    await armed(page, "refresh")

    async with get_sessionmaker()() as session:
        await session.execute(
            update(PipelineRun)
            .where(PipelineRun.pipeline_id == pipeline_id)
            .values(status=Status.COMPLETED)
        )
        await session.commit()
    await page.clock.run_for(1_000)  # the next poll
    await expect(progress).to_have_attribute("data-status", "completed")
    await expect(page.locator("#trigger-button")).to_be_visible()
    assert len(hung) == 1  # the log loop is still waiting on its first request
    await armed(page, "refresh")
    await page.clock.run_for(8_999)  # 9.999 s after the log request
    assert await log_tail.text_content() == "Loading…"
    await page.clock.run_for(1)
    await expect(log_tail).to_have_text("Logs unavailable: no answer in 10 s.")


async def test_a_hidden_tab_stops_polling_and_polls_at_once_when_shown_again(page: Page) -> None:
    pipeline_id = await running_pipeline()
    progress_path = f"/pipelines/{pipeline_id}/progress"
    logs_path = f"/api/pipelines/{pipeline_id}/logs"
    await fake_clock(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    await armed(page, "refresh", "refreshLogs")  # what was already asked is answered

    await page.evaluate(HIDE, True)
    before = len(await fetches(page))
    await page.clock.run_for(60_000)  # a poll of each every second, had it gone on
    assert (await fetches(page))[before:] == []

    await page.evaluate(HIDE, False)  # the clock stands still: at once
    assert sorted((await fetches(page))[before:]) == [("GET", logs_path), ("GET", progress_path)]


async def test_the_key_cookie_is_lax_so_a_link_from_elsewhere_opens_the_page(
    page: Page, configure: Configure, dashboard: str, console: list[str]
) -> None:
    await configure(API_KEYS="alpha", API_KEYS_FOR_READS="true")
    await add_pipeline("linked")
    await page.goto("/")
    await expect(page.locator("h1")).to_have_text("An API key is needed")
    await page.locator("#api-key").fill("alpha")
    await page.locator("#api-key").press("Enter")
    await expect(page.locator("h1")).to_have_text("Pipelines")  # reloaded with the key
    take_refusals(console)
    cookies = await page.context.cookies()
    assert [(c["name"], c["value"], c["sameSite"], c["secure"], c["expires"]) for c in cookies] == [
        ("pipeline_api_key", "alpha", "Lax", False, -1)  # a session cookie
    ]

    elsewhere = f'<a href="{dashboard}/?status=created">Our pipelines</a>'
    await page.route(
        "http://elsewhere.test/",
        lambda route: route.fulfill(body=elsewhere, content_type="text/html"),
    )
    await page.goto("http://elsewhere.test/")
    await page.get_by_role("link", name="Our pipelines").click()
    await page.wait_for_url(f"{dashboard}/?status=created")
    await expect(page.locator("h1")).to_have_text("Pipelines")  # not "An API key is needed"
    await expect(page.locator("tr[data-pipeline-id] a")).to_have_text("linked")

    # served over HTTPS, the cookie is Secure too
    async def proxied(route: Route) -> None:
        path = urlsplit(route.request.url).path
        # as a proxy passes on the address the browser asked for (writes check their Origin)
        headers = {**route.request.headers, "x-forwarded-host": "dashboard.test"}
        await route.fulfill(response=await route.fetch(url=f"{dashboard}{path}", headers=headers))

    await configure(API_KEYS="alpha")
    await page.route("https://dashboard.test/**", proxied)
    await page.goto("https://dashboard.test/")
    await page.locator("summary", has_text="API key").click()
    await page.locator("#api-key").fill("alpha")
    await page.locator("#api-key").press("Enter")
    await expect(page.locator("#api-key-status")).to_have_text("Key saved for this session.")
    secure = await page.context.cookies("https://dashboard.test")
    assert [(c["name"], c["sameSite"], c["secure"]) for c in secure] == [
        ("pipeline_api_key", "Lax", True)
    ]


async def test_without_javascript_the_key_form_sends_nothing(
    browser: Browser, dashboard: str, configure: Configure
) -> None:
    await configure(API_KEYS="alpha")
    context = await browser.new_context(base_url=dashboard, java_script_enabled=False)
    try:
        page = await context.new_page()
        await page.goto("/")
        await page.locator("summary", has_text="API key").click()
        await page.locator("#api-key").fill("alpha")
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        # a press or click waits for the navigation it starts (no_wait_after=False, the default
        # for now): a submission would have been sent, and the page left, by the time it returns
        await page.locator("#api-key").press("Enter", no_wait_after=False)
        assert (requests, page.url) == ([], f"{dashboard}/")
        await page.get_by_role("button", name="Save key").click(no_wait_after=False)
        assert (requests, page.url) == ([], f"{dashboard}/")
    finally:
        await context.close()
