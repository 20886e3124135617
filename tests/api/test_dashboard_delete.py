"""The pipeline page's Delete pipeline button in a real browser (Debian's headless Chromium)
against the app served from this process, with test_dashboard_scripts.py's fixtures: it asks
first, then deletes and opens the list, which says so; the API's refusals (401, 409, and 503
while Prefect is unreachable) are shown where Cancel run's and Retry's are."""

import asyncio

import pytest
from playwright.async_api import Dialog, Page, Request, expect

from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, Status
from app.pipeline import schedules
from tests.api import test_dashboard_scripts as scripts
from tests.conftest import Configure
from tests.e2e.browser import PREFECT_REFUSED_MS, armed, fake_clock, fetches, low_contrast, watch
from tests.support.rows import add_pipeline, add_run

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
dashboard, console, page = scripts.dashboard, scripts.console, scripts.page

NAME = 'nightly <orders> & "co"'  # shown as text, never markup
NEEDS_KEY = (
    "this endpoint needs an API key: send it as 'X-API-Key: <key>' or "
    "'Authorization: Bearer <key>' (keys are configured in API_KEYS)"
)
UNREACHABLE = (
    "Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
    "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
)
REFUSED = "Failed to load resource: the server responded with a status of {}"


def question(pipeline_id: int) -> str:
    return (
        f"Delete pipeline “{NAME}” (#{pipeline_id})? Its runs, their files and its schedule "
        "are deleted with it; this cannot be undone."
    )


def answer_confirm(page: Page, *, accept: bool) -> "asyncio.Future[str]":
    """Answers the page's next dialog; the future gets its type and message once it is answered."""
    asked: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def answer(dialog: Dialog) -> None:
        await (dialog.accept() if accept else dialog.dismiss())
        asked.set_result(f"{dialog.type}: {dialog.message}")

    page.once("dialog", answer)
    return asked


def deletes(page: Page) -> list[tuple[str, str | None]]:
    """The DELETE requests the page sends: path and X-API-Key, in order."""
    sent: list[tuple[str, str | None]] = []

    def record(request: Request) -> None:
        if request.method == "DELETE":
            sent.append((request.url.split("/", 3)[3], request.headers.get("x-api-key")))

    page.on("request", record)
    return sent


async def pipeline_exists(pipeline_id: int) -> bool:
    async with get_sessionmaker()() as session:
        return await session.get(Pipeline, pipeline_id) is not None


async def test_delete_asks_first_by_keyboard_then_the_list_says_it_was_deleted(
    page: Page, dashboard: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prefect is unreachable here: only its part, removing the schedule, answers "there was none";
    # the route, the rows and the files are the real ones
    asked_prefect: list[int] = []

    async def no_schedule(pipeline_id: int) -> None:
        asked_prefect.append(pipeline_id)
        return None

    monkeypatch.setattr(schedules, "delete_pipeline_schedule", no_schedule)
    kept = await add_pipeline("kept")
    pipeline_id = await add_pipeline(NAME, minutes=1)
    await add_run(pipeline_id, Status.COMPLETED, {})
    sent = deletes(page)
    await watch(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    delete = page.get_by_role("button", name="Delete pipeline")
    await expect(delete).to_be_visible()
    # secondary (white), in the danger colour, at WCAG AA
    colours = "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
    assert await delete.evaluate(colours) == ["rgb(180, 35, 24)", "rgb(255, 255, 255)"]
    assert await low_contrast(page, ["#delete-button"]) == {}

    await page.locator("#trigger-button").focus()
    await page.keyboard.press("Tab")  # the next stop after Run again
    await expect(delete).to_be_focused()
    assert await page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"

    asked = answer_confirm(page, accept=False)
    await page.keyboard.press("Enter")
    assert await asyncio.wait_for(asked, 5) == f"confirm: {question(pipeline_id)}"
    # the page's handler has gone on from the dismissed dialog: a request would be sent now
    assert ("DELETE", f"/api/pipelines/{pipeline_id}") not in await fetches(page)
    assert sent == []
    await expect(delete).to_be_focused()
    assert await pipeline_exists(pipeline_id)

    asked = answer_confirm(page, accept=True)
    await page.keyboard.press("Enter")
    assert await asyncio.wait_for(asked, 5) == f"confirm: {question(pipeline_id)}"
    await page.wait_for_url(f"{dashboard}/")
    notice = page.locator("h1 + p#page-notice.notice[role=status]")  # under the heading
    await expect(notice).to_have_text(f"Pipeline “{NAME}” (#{pipeline_id}) was deleted.")
    await expect(notice).to_be_focused()
    await expect(page.locator("tr[data-pipeline-id]")).to_have_count(1)
    await expect(page.locator(f"tr[data-pipeline-id='{kept}'] a")).to_have_text("kept")
    assert sent == [(f"api/pipelines/{pipeline_id}", None)]
    assert asked_prefect == [pipeline_id] * 2  # before the rows go, and after: one set meanwhile
    assert not await pipeline_exists(pipeline_id)

    await page.reload()  # said once
    await expect(page.locator("h1")).to_have_text("Pipelines")
    await expect(notice).to_have_count(0)


async def test_a_refused_delete_says_why_where_cancel_and_retry_do(
    page: Page, configure: Configure, dashboard: str, console: list[str]
) -> None:
    """No key: 401, and the key field takes the keyboard; with the key, Prefect (unreachable
    here) cannot remove the schedule: 503. The page stays, and so does the pipeline."""
    await configure(API_KEYS="alpha")
    pipeline_id = await add_pipeline(NAME)
    await add_run(pipeline_id, Status.FAILED, {})
    sent = deletes(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    delete, message = page.locator("#delete-button"), page.locator("#action-message")
    await expect(page.locator("#retry-button")).to_be_visible()

    asked = answer_confirm(page, accept=True)
    await delete.click()
    assert await asyncio.wait_for(asked, 5) == f"confirm: {question(pipeline_id)}"
    await expect(message).to_have_text(NEEDS_KEY)
    await expect(page.locator("#api-key")).to_be_focused()
    await page.locator("#api-key").fill("alpha")
    await page.locator("#api-key").press("Enter")
    await expect(page.locator("#api-key-status")).to_have_text("Key saved for this session.")

    answer_confirm(page, accept=True)
    await delete.click()
    await expect(message).to_have_text(UNREACHABLE, timeout=PREFECT_REFUSED_MS)
    await expect(delete).to_be_visible()
    await expect(delete).not_to_have_attribute("aria-disabled", "true")  # it may be tried again
    assert page.url == f"{dashboard}/pipelines/{pipeline_id}"
    assert sent == [
        (f"api/pipelines/{pipeline_id}", None),
        (f"api/pipelines/{pipeline_id}", None),  # the key goes in its HttpOnly cookie
    ]
    assert await pipeline_exists(pipeline_id)
    assert sorted(console) == [
        REFUSED.format("401 (Unauthorized)"),
        REFUSED.format("503 (Service Unavailable)"),
    ]
    console.clear()


async def test_a_run_started_meanwhile_is_refused_and_its_message_takes_the_keyboard(
    page: Page, console: list[str]
) -> None:
    """Not Cancel run, which took it before: a second Enter (key repeat) cancelled the run."""
    pipeline_id = await add_pipeline(NAME)
    await add_run(pipeline_id, Status.COMPLETED, {})
    await fake_clock(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    delete = page.locator("#delete-button")
    await expect(delete).to_be_visible()
    await armed(page, "refresh")  # what was already asked is answered
    # the tab in the background: no polls, so the page cannot know of the run started next
    await page.evaluate(scripts.HIDE, True)
    run_id = await add_run(pipeline_id, Status.RUNNING, {})  # e.g. by its schedule

    answer_confirm(page, accept=True)
    await delete.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#action-message")).to_have_text(
        f"run {run_id} of pipeline {pipeline_id} is running; cancel it first "
        f"(POST /api/pipelines/{pipeline_id}/cancel), then delete the pipeline"
    )
    await expect(page.locator("#progress")).to_have_attribute("data-status", "running")
    await expect(delete).to_be_hidden()  # as long as the run is in flight
    await expect(page.locator("#cancel-button")).to_be_visible()
    await expect(page.locator("#action-message")).to_be_focused()
    assert await pipeline_exists(pipeline_id)
    assert console == [REFUSED.format("409 (Conflict)")]
    console.clear()


async def test_an_older_run_in_flight_keeps_cancel_run_and_says_so(
    page: Page, console: list[str]
) -> None:
    """A run triggered while another ran ended first: the latest is completed, the older one
    still runs. The page offered Delete (refused) and no Cancel run."""
    pipeline_id = await add_pipeline(NAME)
    older = await add_run(pipeline_id, Status.RUNNING, {})
    await add_run(pipeline_id, Status.COMPLETED, {})
    await page.goto(f"/pipelines/{pipeline_id}")
    await expect(page.locator("#progress")).to_have_attribute("data-status", "completed")
    await expect(page.locator("#older-runs")).to_have_text(
        "1 older run still in flight: Cancel run stops it too."
    )
    await expect(page.locator("#cancel-button")).to_be_visible()
    await expect(page.locator("#delete-button")).to_be_hidden()

    await page.locator("#cancel-button").click()
    await expect(page.locator("#older-runs")).to_have_count(0)
    await expect(page.locator("#delete-button")).to_be_visible()  # nothing in flight any more
    await expect(page.locator("#cancel-button")).to_be_hidden()
    async with get_sessionmaker()() as session:
        run = await session.get(PipelineRun, older)
        assert run is not None and (run.status, run.error) == (
            Status.CANCELLED,
            "cancelled through the API",
        )
    assert console == []
