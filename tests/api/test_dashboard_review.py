"""The dashboard in a real browser (Debian's headless Chromium) where a reviewer broke it: the
keyboard after Run again, Back to the create form, long names, a write that hangs, a wrong key,
and JavaScript turned off. Prefect is not running; the writes that would reach it are answered
(or held) by the test."""

import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Request, Route, async_playwright, expect

from app.db import get_sessionmaker
from app.models import PipelineRun, Status
from tests.api.test_dashboard_scripts import KEY_REFUSED, console, dashboard, page
from tests.conftest import Configure
from tests.e2e.browser import armed, chromium_path, fake_clock, screenshot
from tests.support.rows import add_pipeline, add_run

__all__ = ["console", "dashboard", "page"]  # shared fixtures

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NO_ANSWER = "No answer in 150 s; the request may still complete: this page shows it if it does."


def posts(page: Page) -> list[str]:
    """The paths of the POST requests the tab sends, in order."""
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method == "POST":
            sent.append(urlsplit(request.url).path)

    page.on("request", record)
    return sent


async def run_status(pipeline_id: int) -> list[Status]:
    async with get_sessionmaker()() as session:
        runs = await session.execute(
            PipelineRun.__table__.select()
            .where(PipelineRun.pipeline_id == pipeline_id)
            .order_by(PipelineRun.id)
        )
        return [Status(row.status) for row in runs]


async def test_a_second_enter_after_run_again_presses_nothing(page: Page) -> None:
    """The pressed button went away and the first one shown took the keyboard: after Run again
    that was Cancel run, so a double press (or key repeat) cancelled the run it had started."""
    pipeline_id = await add_pipeline("keyboard")
    await add_run(pipeline_id, Status.COMPLETED, {})

    async def trigger(route: Route) -> None:  # what Prefect and the API would do: a new run
        run_id = await add_run(pipeline_id, Status.RUNNING, {})
        body = {"run_id": run_id, "status": "running"}
        await route.fulfill(status=202, body=json.dumps(body), content_type="application/json")

    await page.route(f"**/api/pipelines/{pipeline_id}/trigger", trigger)
    sent = posts(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    message = page.locator("#action-message")
    await page.locator("#trigger-button").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#cancel-button")).to_be_visible()
    await expect(page.locator("#trigger-button")).to_be_hidden()
    await expect(message).to_have_text("Run started.")
    await expect(message).to_be_focused()  # what happened, not the next button
    await page.keyboard.press("Enter")
    await page.keyboard.press("Enter")
    await expect(message).to_be_focused()
    assert sent == [f"/api/pipelines/{pipeline_id}/trigger"]
    assert await run_status(pipeline_id) == [Status.COMPLETED, Status.RUNNING]


async def test_a_second_enter_after_cancel_run_does_not_retry(page: Page) -> None:
    """Cancel run, then Enter again, landed on Retry and started a new run."""
    pipeline_id = await add_pipeline("keyboard")
    await add_run(pipeline_id, Status.RUNNING, {})  # no flow run: the API cancels it itself
    sent = posts(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    message = page.locator("#action-message")
    await page.locator("#cancel-button").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#retry-button")).to_be_visible()
    await expect(message).to_have_text("Cancel requested.")
    await expect(message).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(message).to_be_focused()
    assert sent == [f"/api/pipelines/{pipeline_id}/cancel"]
    assert await run_status(pipeline_id) == [Status.CANCELLED]


async def test_a_hung_trigger_says_so_at_once_keeps_the_page_live_and_gives_up_at_150_s(
    page: Page,
) -> None:
    """The page said nothing, stopped polling for as long as the request hung (forever: it had
    no timeout), and the button stayed disabled."""
    pipeline_id = await add_pipeline("hung")
    await add_run(pipeline_id, Status.COMPLETED, {})
    held: list[Route] = []
    # Prefect hangs
    await page.route(f"**/api/pipelines/{pipeline_id}/trigger", lambda route: held.append(route))
    await fake_clock(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    trigger, message = page.locator("#trigger-button"), page.locator("#action-message")
    await expect(trigger).to_be_visible()
    await armed(page, "refresh")

    await trigger.click()  # the clock stands still: "at once"
    await expect(message).to_have_text("Starting the run…")
    await expect(trigger).to_have_attribute("aria-disabled", "true")
    await add_run(pipeline_id, Status.RUNNING, {})  # the API made the run, Prefect is slow
    await page.clock.run_for(2_000)  # the next poll, as if nothing were pressed
    await expect(page.locator("#progress")).to_have_attribute("data-status", "running")
    await expect(page.locator("#cancel-button")).to_be_visible()
    assert len(held) == 1
    await armed(page, "refresh", "refreshLogs")
    for _ in range(29):  # to 147 s after the press, polling all the while
        await page.clock.run_for(5_000)
        await armed(page, "refresh", "refreshLogs")
    await page.clock.run_for(2_999)
    await expect(message).to_have_text("Starting the run…")
    await page.clock.run_for(1)  # 150 s
    await expect(message).to_have_text(NO_ANSWER)
    await expect(trigger).not_to_have_attribute("aria-disabled", "true")


async def test_a_hung_create_says_so_at_once_and_gives_up_at_150_s(page: Page) -> None:
    held: list[Route] = []
    await page.route("**/api/pipelines", lambda route: held.append(route))
    await fake_clock(page)
    await page.goto("/")
    await armed(page, "refresh")  # the list's poll
    submit, status = page.locator("#create-submit"), page.locator("#form-status")
    await page.locator("#name").fill("slow")
    await submit.click()
    await expect(status).to_have_text("Creating the pipeline and starting its run…")
    await expect(submit).to_be_disabled()
    for _ in range(29):
        await page.clock.run_for(5_000)
        await armed(page, "refresh")
    await page.clock.run_for(4_999)
    await expect(page.locator("#form-error")).to_have_text("")
    await page.clock.run_for(1)
    await expect(page.locator("#form-error")).to_have_text(
        "No answer in 150 s; the pipeline may still be created: it then appears in the list "
        "below. Submitting the form again unchanged makes no second one."
    )
    await expect(status).to_have_text("")
    await expect(submit).to_be_enabled()
    assert len(held) == 1


@pytest.fixture(scope="module")
async def bfcache_browser() -> AsyncIterator[Browser]:
    """Chromium with its back/forward cache, which Playwright turns off by default."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            ignore_default_args=["--disable-back-forward-cache"],
        )
        yield chromium
        await chromium.close()


async def test_back_to_the_create_form_can_create_again(
    bfcache_browser: Browser, dashboard: str
) -> None:
    """Restored from the back/forward cache, the form kept the button it had disabled for the page
    that was loading: nothing could be created without a reload."""
    created = await add_pipeline("created")
    keys: list[str | None] = []

    async def create(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        body = {"id": created, "message": "created"}
        await route.fulfill(status=201, body=json.dumps(body), content_type="application/json")

    context = await bfcache_browser.new_context(base_url=dashboard)
    try:
        tab = await context.new_page()
        await tab.route("**/api/pipelines", create)
        await tab.route("**/api/schedules", lambda route: route.fulfill(json=[]))
        await tab.goto("/")
        await tab.evaluate("window.kept = 'this very page'")
        await tab.locator("#name").fill("again")
        await tab.locator("#create-submit").click()
        await tab.wait_for_url(f"**/pipelines/{created}")
        await tab.go_back(wait_until="commit")  # a page restored from the cache fires no load
        assert await tab.evaluate("window.kept") == "this very page"  # from the cache
        await expect(tab.locator("#create-submit")).to_be_enabled()
        await tab.locator("#create-submit").click()
        await tab.wait_for_url(f"**/pipelines/{created}")
        assert len(keys) == 2 and keys[0] != keys[1]  # another filling of the form
    finally:
        await context.close()


async def test_long_names_and_errors_wrap_instead_of_widening_the_page(page: Page) -> None:
    """A 200-character name made the list 2,559 px wide in a 1,280 px window."""
    name = "n" * 200
    error = "E" * 400
    pipeline_id = await add_pipeline(name)
    stage = {"status": Status.FAILED, "error": error, "records_in": 10, "attempts": 1}
    await add_run(pipeline_id, Status.FAILED, {"ingest": stage}, error=f"ingest: {error}")
    widths = "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    for width in (1280, 375):
        await page.set_viewport_size({"width": width, "height": 900})
        for path in ("/", f"/pipelines/{pipeline_id}"):
            await page.goto(path)
            await expect(page.locator("h1")).to_be_visible()
            assert await page.evaluate(widths) == [width, width], (width, path)
            await screenshot(page, f"long-name-{'list' if path == '/' else 'pipeline'}-{width}")


async def test_a_wrong_key_is_not_saved_and_a_refused_one_is_named(
    page: Page, configure: Configure, dashboard: str, console: list[str]
) -> None:
    """A typo was answered "Key saved for this session."; the next write then said only "the API
    key is not valid", which did not tell the reader that it meant the key saved here."""
    await configure(API_KEYS="alpha")
    pipeline_id = await add_pipeline("keyed")
    await add_run(pipeline_id, Status.COMPLETED, {})
    await page.goto(f"/pipelines/{pipeline_id}")
    await page.locator("#api-key-panel summary").click()
    await page.locator("#api-key").fill("typo-key")
    await page.locator("#api-key").press("Enter")
    await expect(page.locator("#api-key-status")).to_have_text(
        "Not saved: not one of this server's API keys; check it against API_KEYS"
    )
    assert await page.context.cookies() == []

    # a key saved before API_KEYS changed
    await page.context.add_cookies([{"name": "pipeline_api_key", "value": "old", "url": dashboard}])
    await page.locator("#log-tail").focus()
    await page.locator("#trigger-button").click()
    await expect(page.locator("#action-message")).to_have_text(KEY_REFUSED)
    await expect(page.locator("#api-key")).to_be_focused()
    await page.locator("#api-key-panel summary").click()  # closed
    await page.goto("/")
    await page.locator("#name").fill("keyed too")
    await page.locator("#create-submit").click()
    await expect(page.locator("#form-error")).to_have_text(KEY_REFUSED)
    refused = "Failed to load resource: the server responded with a status of {}"
    assert console == [
        refused.format("422 (Unprocessable Entity)"),
        refused.format("401 (Unauthorized)"),
        refused.format("401 (Unauthorized)"),
    ]
    console.clear()


async def test_without_javascript_the_pages_say_what_needs_it_and_the_form_sends_nothing(
    browser: Browser, dashboard: str, configure: Configure
) -> None:
    """The create form sent a GET with the name in the address, the pipeline page said
    "Loading…" for ever, and the notice promised lists that a key-protected server refuses."""
    pipeline_id = await add_pipeline("plain")
    await add_run(pipeline_id, Status.COMPLETED, {})
    context = await browser.new_context(base_url=dashboard, java_script_enabled=False)
    try:
        tab = await context.new_page()
        sent = posts(tab)
        await tab.goto("/")
        await expect(tab.locator(f"tr[data-pipeline-id='{pipeline_id}'] a")).to_have_text("plain")
        for control in ("#name", "#record_count", "#file", "#format", "#create-submit"):
            await expect(tab.locator(control)).to_be_disabled()
        await expect(tab.locator("#create-form noscript p")).to_have_text(
            "Creating a pipeline here needs JavaScript."
        )
        await tab.locator("#create-submit").click(force=True, no_wait_after=False)
        assert (sent, tab.url) == ([], f"{dashboard}/")
        await expect(tab.locator("#noscript-notice")).to_have_text(
            "The create form, live progress, log tail and buttons need JavaScript; the lists, "
            "the pages and the downloads work without it."
        )

        await tab.goto(f"/pipelines/{pipeline_id}")
        await expect(tab.locator("#log-tail")).to_have_text(
            "The log tail needs JavaScript; without it, open the last 200 lines (JSON)."
        )
        await expect(tab.locator("#log-tail a")).to_have_attribute(
            "href", f"/api/pipelines/{pipeline_id}/logs?limit=200&tail=true"
        )
        await expect(tab.locator("#schedule")).to_have_text("needs JavaScript")

        await configure(API_KEYS="alpha", API_KEYS_FOR_READS="true")
        await tab.goto("/")
        await expect(tab.locator("h1")).to_have_text("An API key is needed")
        await expect(tab.locator("#noscript-notice")).to_have_text(
            "This server asks for an API key to read pipelines, and entering it needs "
            "JavaScript: turn JavaScript on to use the dashboard."
        )
    finally:
        await context.close()


async def test_with_javascript_the_form_is_enabled_and_the_texts_are_replaced(page: Page) -> None:
    pipeline_id = await add_pipeline("live")
    await page.goto("/")
    await expect(page.locator("#create-submit")).to_be_enabled()
    await expect(page.locator("#name")).to_be_editable()
    await page.goto(f"/pipelines/{pipeline_id}")
    await expect(page.locator("#log-tail")).to_have_text("No run yet.")
    await expect(page.locator("#schedule")).to_have_text(
        f"none (pipeline schedule set {pipeline_id} --cron …, or PUT …/schedule)"
    )
