"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright against the
real stack (Prefect server, worker, API). Screenshots go to tests/results/screenshots/."""

from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest
from playwright.async_api import Browser, FilePayload, Page, Route, expect
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.schedules import RRuleSchedule

from app.display import duration
from app.pipeline.deploy import DEPLOYMENT_NAME
from tests.e2e.browser import low_contrast, screenshot
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import next_daily, start_with_env, wait_for_stage

# one backend is enough for the browser: the API under it is tested on both
pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)

LIVE = 90_000  # ms a run may take to finish on a loaded CI machine
ALL_REJECTED = (
    "id,name,category,value,quantity,is_active,created_at\n"
    "1,a,Q,100,1,true,2026-03-01 00:00:00\n"
    ",b,A,100,1,true,2026-03-01 00:00:00\n"
    "3,c,Z,100,1,true,2026-03-01 00:00:00\n"
)
HEADER_ONLY = ALL_REJECTED.splitlines()[0].encode() + b"\n"
REJECTED_ERROR = (
    "RecordsRejectedError: all 3 input records were rejected (unknown category (must be A, B, C or D): 2, null id: 1); "
    "the run's rejects file lists each with its reject_reason"
)
# text on the list page whose contrast is checked (WCAG AA)
LIST_TEXT = ["body", "h1", "label", ".hint", "#file-error", "#form-error", "#create-submit"]
LIST_TEXT += [".filter button", "thead th", ".site-header a"]
# Records the progress region's statuses and marks the document: a reload would lose both.
WATCH_JS = """() => {
  window.notReloaded = true;
  const progress = document.getElementById("progress");
  window.seen = [progress.dataset.status];
  new MutationObserver(() => {
    if (window.seen.at(-1) !== progress.dataset.status) window.seen.push(progress.dataset.status);
  }).observe(progress, { attributes: true, attributeFilter: ["data-status"] });
}"""


@pytest.fixture
def console() -> list[str]:
    """The tab's script errors and failed loads; a test that expects some takes them out."""
    return []


@pytest.fixture
async def page(browser: Browser, stack: RunningStack, console: list[str]) -> AsyncIterator[Page]:
    """A fresh browser tab on the stack's API; an unexpected script error or failed load fails
    the test."""
    context = await browser.new_context(
        base_url=stack.stack.api_url, viewport={"width": 1280, "height": 900}
    )
    tab = await context.new_page()
    tab.on("pageerror", lambda error: console.append(f"script error: {error}"))
    tab.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    yield tab
    await context.close()
    assert console == []


async def _stage_rows(page: Page) -> list[list[str]]:
    rows = page.locator("table.stages tbody tr")
    return [
        [" ".join(text.split()) for text in await rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(await rows.count())
    ]


async def test_create_through_the_form_and_watch_it_complete_live(
    page: Page, browser: Browser, api: httpx.AsyncClient, stack: RunningStack
) -> None:
    await page.goto("/")
    await page.get_by_label("Name").fill("browser demo")
    await page.get_by_label("Records to generate").fill("1000")
    await page.get_by_role("button", name="Create and run").click()
    await page.wait_for_url("**/pipelines/*")
    pipeline_id = int(page.url.rsplit("/", 1)[1])
    await page.evaluate(WATCH_JS)

    progress = page.locator("#progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=LIVE)
    seen = await page.evaluate("window.seen")
    assert seen[0] in ("pending", "running") and seen[-1] == "completed", seen
    assert await page.evaluate("window.notReloaded") is True  # live, not reloaded

    body = (await api.get(f"/api/pipelines/{pipeline_id}")).json()
    run = body["latest_run"]
    await expect(page.locator(".progress-line")).to_have_text(
        f"completed Run {run['id']} completed (5 of 5 stages done)."
    )
    rows = await _stage_rows(page)
    assert [row[:2] + row[3:6] for row in rows] == [
        [name, "completed", "1,000", "1,000", "0"]
        for name in ("generate", "ingest", "process", "transform", "export")
    ]
    assert [row[2] for row in rows] == [duration(s["duration_seconds"]) for s in run["stages"]]
    await expect(page.locator("#prefect-link")).to_have_attribute(
        "href",
        f"http://127.0.0.1:{stack.stack.prefect_port}/runs/flow-run/{run['prefect_flow_run_id']}",
    )
    await expect(page.locator("#log-tail")).to_contain_text(
        "stage export completed: 1000 in, 1000 out", timeout=30_000
    )
    await expect(page.locator("#cancel-button")).to_be_hidden()
    await expect(page.locator("#retry-button")).to_be_hidden()

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Results (csv)").click()
    download = await download_info.value
    assert download.suggested_filename == f"pipeline-{pipeline_id}-run-{run['id']}-results.csv"
    content = (await download.path()).read_text().splitlines()
    assert (content[0].split(",")[:3], len(content)) == (["id", "name", "category"], 1001)
    await screenshot(page, "pipeline-completed")
    assert await low_contrast(page, ["#run-status", ".stages .badge", "#prefect-link", "td"]) == {}

    # a phone: no sideways scrolling; each stage a card whose cells carry their labels
    phone = await browser.new_page(
        base_url=stack.stack.api_url, viewport={"width": 375, "height": 740}
    )
    await phone.goto(f"/pipelines/{pipeline_id}")
    await expect(phone.locator("#progress")).to_have_attribute("data-status", "completed")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 375
    label = "getComputedStyle(document.querySelector('.stages td'), '::before').content"
    assert await phone.evaluate(label) == '"Status"'
    await screenshot(phone, "pipeline-narrow")
    await phone.close()

    # another run from the page: the same page follows it to completed, still without a reload
    await page.get_by_role("button", name="Run again").click()
    await expect(page.locator("#action-message")).to_have_text("Run started.")
    await expect(progress).to_have_attribute("data-run-id", str(run["id"] + 1), timeout=10_000)
    await expect(progress).to_have_attribute("data-status", "completed", timeout=LIVE)
    assert await page.evaluate("window.notReloaded") is True

    await page.goto("/")
    row = page.locator(f"tr[data-pipeline-id='{pipeline_id}']")
    await expect(row.locator(".badge")).to_have_text("completed")
    await expect(row.get_by_role("link")).to_have_text("browser demo")
    await screenshot(page, "pipelines-list")


async def test_the_list_follows_new_pipelines_and_their_runs_without_a_reload(
    page: Page, api: httpx.AsyncClient
) -> None:
    await page.goto("/")
    await page.evaluate("() => { window.notReloaded = true; }")
    created = await api.post(
        "/api/pipelines", json={"name": "listed live", "record_count": 1000, "trigger": True}
    )
    pipeline_id = created.json()["id"]

    row = page.locator(f"tr[data-pipeline-id='{pipeline_id}']")
    await expect(row.get_by_role("link")).to_have_text("listed live", timeout=30_000)
    await expect(row.locator(".badge")).to_have_text("completed", timeout=LIVE)
    run_id = (await api.get(f"/api/pipelines/{pipeline_id}")).json()["latest_run"]["id"]
    await expect(row.locator("td[data-label='Last run']")).to_contain_text(f"run {run_id}, ")
    assert await page.evaluate("window.notReloaded") is True


async def test_the_list_says_why_it_stopped_following_and_recovers(
    page: Page, console: list[str]
) -> None:
    # The list region's answer once reads need a key (its text: tests/api/test_dashboard_access.py)
    needs_key = "reading needs an API key: enter it under 'API key'"
    await page.goto("/")
    message = page.locator("#list-message")
    await expect(message).to_have_text("")

    async def refuse(route: Route) -> None:
        await route.fulfill(status=401, content_type="text/plain; charset=utf-8", body=needs_key)

    await page.route("**/pipelines-list?*", refuse)
    await page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    await expect(message).to_have_text(needs_key)

    await page.unroute("**/pipelines-list?*")
    await page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    await expect(message).to_have_text("")
    assert [line for line in console if "status of 401" in line] == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    console.clear()


async def test_an_upload_whose_rows_are_all_rejected_shows_the_error(page: Page) -> None:
    await page.goto("/")
    await page.get_by_label("Name").fill("all rejected")
    await page.get_by_label("Input file (optional)").set_input_files(
        files=FilePayload(name="orders.csv", mimeType="text/csv", buffer=ALL_REJECTED.encode())
    )
    await page.get_by_role("button", name="Create and run").click()
    await page.wait_for_url("**/pipelines/*")
    await page.evaluate(WATCH_JS)

    await expect(page.locator("#progress")).to_have_attribute("data-status", "failed", timeout=LIVE)
    assert await page.evaluate("window.notReloaded") is True
    await expect(page.locator("#run-error")).to_have_text(f"Error: ingest: {REJECTED_ERROR}")
    rows = await _stage_rows(page)
    assert await low_contrast(page, ["#run-status", "tr[data-stage='process'] .badge"]) == {}
    assert [row[:2] for row in rows] == [
        ["generate", "completed"],
        ["ingest", "failed"],
        ["process", "cancelled"],
        ["transform", "cancelled"],
        ["export", "cancelled"],
    ]
    assert rows[1][3:] == ["3", "0", "3", REJECTED_ERROR]  # in, out, rejected: bad data, no retry
    assert rows[2][6] == "not run: an earlier stage failed"
    await expect(page.get_by_role("button", name="Retry")).to_be_visible()
    await expect(page.get_by_role("link", name="Rejected rows (CSV)")).to_be_visible()
    await screenshot(page, "pipeline-failed")


async def test_the_pipeline_page_shows_its_schedule_and_next_run(
    page: Page, api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    pipeline_id = (
        await api.post("/api/pipelines", json={"name": "scheduled", "record_count": 10})
    ).json()["id"]
    await page.goto(f"/pipelines/{pipeline_id}")
    schedule = page.locator("#schedule")
    await expect(schedule).to_have_text(
        f"none (pipeline schedule set {pipeline_id} --cron …, or PUT …/schedule)"
    )

    next_six = next_daily(6, "Europe/Paris")
    body = {"cron": "0 6 * * *", "timezone": "Europe/Paris"}
    assert (await api.put(f"/api/pipelines/{pipeline_id}/schedule", json=body)).status_code == 200
    try:
        await page.reload()
        await expect(schedule).to_have_text(
            f"cron 0 6 * * * (Europe/Paris) · next run {next_six:%Y-%m-%d %H:%M:%S} UTC"
        )
        await api.post(f"/api/pipelines/{pipeline_id}/schedule/pause")
        await page.reload()
        await expect(schedule).to_have_text("cron 0 6 * * * (Europe/Paris) · paused")

        both = {"cron": "0 0 1-7 * 1", "day_or": False, "active": False}  # the first Monday
        path = f"/api/pipelines/{pipeline_id}/schedule"
        assert (await api.put(path, json=both)).status_code == 200
        await page.reload()
        await expect(schedule).to_have_text(
            "cron 0 0 1-7 * 1 (UTC, on days matching both its day fields) · paused"
        )
        # a rule set in Prefect's own UI: the page said "every null s"
        deployment = await prefect.read_deployment_by_name(f"Data Pipeline/{DEPLOYMENT_NAME}")
        schedule_id = UUID((await api.get(path)).json()["schedule_id"])
        rule = RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO", timezone="UTC")
        await prefect.update_deployment_schedule(deployment.id, schedule_id, schedule=rule)
        await page.reload()
        await expect(schedule).to_have_text(  # Prefect adds a DTSTART line to the rule
            "rrule DTSTART:20200101T000000 FREQ=WEEKLY;BYDAY=MO (UTC; set in Prefect) · paused"
        )
    finally:
        await api.delete(f"/api/pipelines/{pipeline_id}/schedule")


async def test_cancel_then_retry_from_the_page(
    page: Page, api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    env = {"PIPELINE_STAGE_DELAY": "generate:60"}  # held, so there is something to cancel
    pipeline_id, _ = await start_with_env(api, prefect, env, "to cancel")
    await wait_for_stage(api, pipeline_id, "generate", "running")
    await page.goto(f"/pipelines/{pipeline_id}")
    await expect(page.locator(".progress-line")).to_contain_text("running: generate")

    await page.get_by_role("button", name="Cancel run").click()
    progress = page.locator("#progress")
    await expect(progress).to_have_attribute("data-status", "cancelled", timeout=30_000)
    await expect(page.locator("#action-message")).to_have_text("Cancel requested.")
    # every stage not finished is cancelled with its run
    assert [row[1] for row in await _stage_rows(page)] == ["cancelled"] * 5
    retry = page.get_by_role("button", name="Retry")
    await expect(retry).to_be_visible()
    # the pressed button went away: the keyboard is on what it did, not on Retry (a second Enter
    # would start a run)
    await expect(page.locator("#action-message")).to_be_focused()
    await retry.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#action-message")).to_have_text("Retry started.")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=LIVE)


async def test_form_errors_by_their_fields_keyboard_and_contrast(
    page: Page, console: list[str]
) -> None:
    await page.goto("/")
    tab_stops = []
    for _ in range(9):
        await page.keyboard.press("Tab")
        tab_stops.append(
            await page.evaluate(
                "document.activeElement.id || document.activeElement.textContent.trim()"
            )
        )
    assert tab_stops == [
        "Skip to content",
        "Data Pipeline Service",
        "Pipelines",
        "API docs",
        "name",
        "record_count",
        "file",
        "format",
        "create-submit",
    ]
    outline = "getComputedStyle(document.activeElement).outlineStyle"
    assert await page.evaluate(outline) == "solid"  # focus is visible

    await page.get_by_label("Name").fill("   ")
    await page.get_by_label("Records to generate").fill("60000000")
    await page.get_by_label("Name").press("Enter")
    await expect(page.locator("#name-error")).to_have_text(
        "must not be blank; give the pipeline a name"
    )
    await expect(page.locator("#record_count-error")).to_have_text(
        "must be at most 50,000,000 (PIPELINE_MAX_RECORD_COUNT); got 60,000,000"
    )
    await expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Name")).to_be_focused()

    await page.get_by_label("Name").fill("header only")
    await page.get_by_label("Input file (optional)").set_input_files(
        files=FilePayload(name="empty.csv", mimeType="text/csv", buffer=HEADER_ONLY)
    )
    await page.get_by_role("button", name="Create and run").click()
    await expect(page.locator("#file-error")).to_have_text("the file has no records, only a header")
    await expect(page.locator("#name-error")).to_have_text("")
    refused = "Failed to load resource: the server responded with a status of 422 "
    assert console == [refused + "(Unprocessable Entity)"] * 2  # the browser logs each 422
    console.clear()
    await screenshot(page, "form-errors")
    assert await low_contrast(page, LIST_TEXT) == {}
