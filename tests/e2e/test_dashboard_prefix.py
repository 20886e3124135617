"""The dashboard behind a reverse proxy that serves it under /pipelines and strips the prefix
(`UVICORN_ROOT_PATH=/pipelines`), in Debian's headless Chromium against the real stack's Prefect
server, worker and database: every link, form and script call stays under the prefix (each left
it, a 404 of the proxy's, and a larger upload was refused 413)."""

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.conftest import RunningStack
from tests.support.prefix_proxy import behind_prefix

# one backend is enough for the browser: the API under it is tested on both
pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)

PREFIX = "/pipelines"
LIVE = 90_000  # ms a run may take to finish on a loaded CI machine


async def test_create_watch_download_and_go_back_under_a_proxys_prefix(
    browser: Browser, stack: RunningStack
) -> None:
    console: list[str] = []
    async with behind_prefix(PREFIX) as proxy:
        context = await browser.new_context(base_url=proxy, viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        page.on("pageerror", lambda error: console.append(f"script error: {error}"))
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)

        await page.goto(f"{PREFIX}/")
        await page.get_by_label("Name").fill("behind a proxy")
        await page.get_by_label("Records to generate").fill("1000")
        await page.get_by_role("button", name="Create and run").click()
        await page.wait_for_url(f"{proxy}{PREFIX}/pipelines/*")
        pipeline_id = int(page.url.rsplit("/", 1)[1])
        await expect(page.locator("#progress")).to_have_attribute(
            "data-status", "completed", timeout=LIVE
        )
        await expect(page.locator("#log-tail")).to_contain_text(
            "stage export completed: 1000 in, 1000 out", timeout=30_000
        )
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Results (csv)").click()
        lines = (await (await download_info.value).path()).read_text().splitlines()
        assert (lines[0].split(",")[:3], len(lines)) == (["id", "name", "category"], 1001)

        await page.get_by_role("link", name="← Pipelines").click()
        await page.wait_for_url(f"{proxy}{PREFIX}/")
        row = page.locator(f"tr[data-pipeline-id='{pipeline_id}']")
        await expect(row.locator(".badge")).to_have_text("completed")
        await page.get_by_role("link", name="API docs").click()
        await page.wait_for_url(f"{proxy}{PREFIX}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "Data Pipeline Service"
        )
        await context.close()
    assert console == []
