"""The dashboard's live pages in a real browser (Debian's headless Chromium): what they keep
doing after a run ends (the log tail of a cancelled run until the line saying so), when the
pipeline is deleted elsewhere, the keyboard focus across polls, and the create form submitted
twice. Prefect is not running; the API calls that would reach it are answered by the test."""

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, Route, expect
from sqlalchemy import delete, update

from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, Status, utcnow
from tests.api.test_dashboard_scripts import console, dashboard, page, pytestmark
from tests.e2e.browser import armed, fake_clock, sent, watch
from tests.support.rows import add_pipeline, add_run

__all__ = ["console", "dashboard", "page", "pytestmark"]  # shared fixtures

# a run's first line, as GET /api/pipelines/{id}/logs gives it
STARTED = {
    "id": "5b0c1e4a-7d2f-4a8e-9c31-2f6e8d0a1b57",
    "timestamp": "2026-11-25T09:00:01.250000Z",
    "level": "INFO",
    "logger": "prefect.flow_runs",
    "message": "Beginning flow run 'calm-otter' for flow 'data-pipeline'",
    "task_run_id": None,
}
STARTED_SHOWN = "09:00:01 INFO    Beginning flow run 'calm-otter' for flow 'data-pipeline'"


def cancelled_line(run_id: int) -> dict[str, Any]:
    """The service's own last line of a cancelled run (app/pipeline/run_logs.py)."""
    return {
        "id": f"run-{run_id}-cancelled",
        "timestamp": "2026-11-25T09:00:04.500000Z",
        "level": "INFO",
        "logger": "pipeline",
        "message": f"run {run_id} cancelled through the API",
        "task_run_id": None,
    }


async def answer_logs(page: Page, pipeline_id: int, lines: list[dict[str, Any]]) -> str:
    """Answer the page's log requests with `lines` as they are when asked; their path."""
    path = f"/api/pipelines/{pipeline_id}/logs"
    await page.route(
        lambda url: urlsplit(url).path == path, lambda route: route.fulfill(json=list(lines))
    )
    return path


async def test_a_finished_run_s_page_keeps_watching_and_shows_a_run_started_elsewhere(
    page: Page,
) -> None:
    """It stopped polling ~10 s after its run ended: a scheduled run never showed, and Run again
    started a second run beside it."""
    pipeline_id = await add_pipeline("idle")
    await add_run(pipeline_id, Status.COMPLETED, {})
    polls = f"/pipelines/{pipeline_id}/progress"
    await fake_clock(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    await expect(page.locator("#trigger-button")).to_be_visible()
    await armed(page, "refresh")
    for _ in range(5):  # the five 2 s polls after a run ends
        await page.clock.run_for(2_000)
        await armed(page, "refresh")
    await page.clock.run_for(3_000)  # 13 s after the first
    assert await sent(page, polls) == [0, 2_000, 4_000, 6_000, 8_000, 10_000]
    await add_run(pipeline_id, Status.RUNNING, {})  # a scheduled run
    await page.clock.run_for(6_999)
    assert len(await sent(page, polls)) == 6
    await page.clock.run_for(1)  # then one every 10 s
    assert await sent(page, polls) == [0, 2_000, 4_000, 6_000, 8_000, 10_000, 20_000]
    await expect(page.locator("#progress")).to_have_attribute("data-status", "running")
    await expect(page.locator("#trigger-button")).to_be_hidden()
    await expect(page.locator("#cancel-button")).to_be_visible()


async def test_a_cancelled_run_s_log_tail_goes_on_until_the_line_saying_so(page: Page) -> None:
    """The tail stopped 10 s after the run showed cancelled; the API adds the line saying so once
    Prefect has the run's last lines, up to a minute after the cancel: it never showed."""
    pipeline_id = await add_pipeline("cancelled")
    run_id = await add_run(pipeline_id, Status.RUNNING, {})
    lines = [STARTED]
    logs = await answer_logs(page, pipeline_id, lines)
    await fake_clock(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    await armed(page, "refresh", "refreshLogs")
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(
            update(PipelineRun)
            .where(PipelineRun.id == run_id)
            .values(
                status=Status.CANCELLED, completed_at=utcnow(), error="cancelled through the API"
            )
        )
    await page.clock.run_for(1_000)
    await expect(page.locator("#progress")).to_have_attribute("data-status", "cancelled")
    await armed(page, "refresh", "refreshLogs")
    polled = len(await sent(page, logs))
    for _ in range(20):  # 40 s without the line: a poll every 2 s
        await page.clock.run_for(2_000)
        await armed(page, "refresh", "refreshLogs")
    assert len(await sent(page, logs)) == polled + 20
    await expect(page.locator("#log-tail")).to_have_text(STARTED_SHOWN)

    lines.append(cancelled_line(run_id))  # 41 s after the run showed cancelled
    await page.clock.run_for(2_000)
    await expect(page.locator("#log-tail")).to_have_text(
        f"{STARTED_SHOWN}\n09:00:04 INFO    run {run_id} cancelled through the API"
    )
    await armed(page, "refresh")
    assert "refreshLogs" not in await page.evaluate("window.__watched.timers()")
    for _ in range(7):  # the tail is complete: no more log requests
        await page.clock.run_for(10_000)
        await armed(page, "refresh")
    assert len(await sent(page, logs)) == polled + 21


async def test_a_cancelled_run_s_log_tail_waits_63_s_at_most_for_its_line(page: Page) -> None:
    """As `pipeline logs --follow`: the API's minute, and 3 s, from when it is seen cancelled."""
    pipeline_id = await add_pipeline("never said")
    await add_run(pipeline_id, Status.CANCELLED, {}, error="cancelled through the API")
    logs = await answer_logs(page, pipeline_id, [STARTED])
    await fake_clock(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    await armed(page, "refresh", "refreshLogs")
    for _ in range(31):
        await page.clock.run_for(2_000)
        await armed(page, "refresh", "refreshLogs")
    async with page.expect_response(lambda response: urlsplit(response.url).path == logs):
        await page.clock.run_for(2_000)  # 64 s: the last
    for _ in range(6):
        await page.clock.run_for(10_000)
        await armed(page, "refresh")
    assert await sent(page, logs) == list(range(0, 64_001, 2_000))
    await expect(page.locator("#log-tail")).to_have_text(STARTED_SHOWN)


async def test_a_finished_run_s_log_tail_stops_as_its_last_lines_are_in(page: Page) -> None:
    """A cancelled run whose line is there already: one request. A completed one: five more, 2 s
    apart, as Prefect receives a run's last lines a little late."""
    cancelled = await add_pipeline("cancelled earlier")
    run_id = await add_run(cancelled, Status.CANCELLED, {}, error="cancelled through the API")
    completed = await add_pipeline("completed")
    await add_run(completed, Status.COMPLETED, {})
    paths = {
        cancelled: await answer_logs(page, cancelled, [STARTED, cancelled_line(run_id)]),
        completed: await answer_logs(page, completed, [STARTED]),
    }
    await fake_clock(page)
    for pipeline_id, polls in ((cancelled, 1), (completed, 6)):
        await page.goto(f"/pipelines/{pipeline_id}")
        for at in range(0, 14_001, 2_000):
            if at:
                await page.clock.run_for(2_000)
            await armed(page, "refresh", *(["refreshLogs"] if at < (polls - 1) * 2_000 else []))
        assert await sent(page, paths[pipeline_id]) == list(range(0, polls * 2_000 - 1, 2_000))


async def test_a_pipeline_deleted_elsewhere_stops_the_page_s_polls(
    page: Page, console: list[str]
) -> None:
    pipeline_id = await add_pipeline("gone")
    await add_run(pipeline_id, Status.RUNNING, {})
    polls = f"/pipelines/{pipeline_id}/progress"
    await fake_clock(page)
    await page.goto(f"/pipelines/{pipeline_id}")
    await expect(page.locator("#cancel-button")).to_be_visible()
    await armed(page, "refresh", "refreshLogs")
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))
    await page.clock.run_for(1_000)  # the next poll (and log request) finds it gone
    await expect(page.locator("#action-message")).to_have_text(
        f"pipeline {pipeline_id} not found: it was deleted. The list of pipelines is at /."
    )
    await expect(page.locator("#actions button:visible")).to_have_count(0)
    assert await sent(page, polls) == [0, 1_000]
    await page.clock.run_for(60_000)  # a poll every 1 s, had it gone on (5 s after an error)
    assert await sent(page, polls) == [0, 1_000]
    not_found = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    assert set(console) == {not_found}  # the one poll that found it gone (and its log request)
    console.clear()


async def test_the_focused_link_keeps_the_keyboard_across_polls(page: Page) -> None:
    """A row (or the whole list) swapped in by a poll took the focus with it, to the page."""
    pipeline_id = await add_pipeline("watched")
    run_id = await add_run(pipeline_id, Status.RUNNING, {})
    await fake_clock(page)
    await page.goto("/")
    link = page.locator(f"tr[data-pipeline-id='{pipeline_id}'] a")
    await link.focus()
    await armed(page, "refresh")
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(
            update(PipelineRun).where(PipelineRun.id == run_id).values(status=Status.COMPLETED)
        )
    await page.clock.run_for(2_000)  # a poll while a pipeline on the page runs
    row = page.locator(f"tr[data-pipeline-id='{pipeline_id}']")
    await expect(row).to_contain_text("completed")  # the row was swapped
    await expect(link).to_be_focused()
    await armed(page, "refresh")
    await add_pipeline("newer")  # a new row: the whole list region is swapped
    await page.clock.run_for(10_000)  # the next poll, none running
    await expect(page.locator("tr[data-pipeline-id]")).to_have_count(2)
    await expect(link).to_be_focused()


async def test_the_create_form_sent_twice_makes_one_pipeline(page: Page) -> None:
    """The button was enabled again as soon as the answer came, while the new page loaded, and
    the request carried no Idempotency-Key: a second Enter made a second pipeline and run."""
    posts: list[str | None] = []
    loading, loaded = asyncio.Event(), asyncio.Event()

    async def api(route: Route) -> None:
        posts.append(route.request.headers.get("idempotency-key"))
        body = {"id": 424242, "message": "created"}
        await route.fulfill(status=201, body=json.dumps(body), content_type="application/json")

    async def next_page(route: Route) -> None:  # slow to load: the window for a second Enter
        loading.set()
        await loaded.wait()
        await route.fulfill(body="<p>next page</p>", content_type="text/html")

    await page.route("**/api/pipelines", api)
    await page.route("**/pipelines/424242", next_page)
    await watch(page)
    await page.goto("/")
    await page.locator("#name").fill("twice")
    # the keyboard's press, not the locator's: that one waits for a navigation the press starts,
    # which next_page holds until after it returned (30 s lost when the answer came that soon)
    await page.keyboard.press("Enter")
    await asyncio.wait_for(loading.wait(), 5)  # the answer read, the next page asked for
    await page.keyboard.press("Enter")  # while the pipeline's page loads: still the form's field
    loaded.set()  # the key's handlers have run: a second submission would be recorded by now
    await page.wait_for_url("**/pipelines/424242")
    assert await sent(page, "/api/pipelines", "POST") == [0]  # the first page's, read from this one
    assert len(posts) == 1 and posts[0] is not None and len(posts[0]) == 32


async def test_a_record_count_left_empty_is_explained_by_its_field(page: Page) -> None:
    """The browser sends "" for an empty number field (or one it cannot read, 1,000 in some):
    the API's answer, "unable to parse string as an integer", did not say what to type."""
    posts: list[str] = []
    await page.route("**/api/pipelines", lambda route: posts.append(route.request.url))
    await page.goto("/")
    await page.locator("#name").fill("empty")
    await page.locator("#record_count").fill("")
    await page.locator("#create-submit").click()
    await expect(page.locator("#record_count-error")).to_have_text(
        "enter a whole number, like 1000 (digits only)"
    )
    await expect(page.locator("#record_count")).to_be_focused()
    assert posts == []
