"""Helpers of the browser tests: Debian's Chromium under Playwright, contrast and screenshots,
and the page's timers on Playwright's fake clock."""

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from app.config import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "tests" / "results" / "screenshots"
# how long a page may wait for an answer that comes after Prefect's client gives up on a server
# that is not running (~1.6 s here; a loaded CI machine took over 5 s, Playwright's default)
PREFECT_REFUSED_MS = 30_000

# Walks up from each element to the first opaque background: the colours a reader sees.
_COLOURS_JS = """
selectors => selectors.map(selector => {
  const element = document.querySelector(selector);
  if (!element) return [selector, null, null];
  let node = element, background = "rgba(0, 0, 0, 0)";
  while (node && node.nodeType === 1) {
    const colour = getComputedStyle(node).backgroundColor;
    if (!/rgba\\(.*, 0\\)$/.test(colour)) { background = colour; break; }
    node = node.parentElement;
  }
  if (background === "rgba(0, 0, 0, 0)") background = "rgb(255, 255, 255)";
  return [selector, getComputedStyle(element).color, background];
})
"""


def chromium_path() -> str:
    """Debian's chromium: Playwright's own download needs the internet, which CI lacks."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the dashboard's browser tests need Debian's chromium, and /usr/bin/chromium was not "
            "found; .ci/run installs it with apt-get install chromium",
            pytrace=False,
        )
    return path


@asynccontextmanager
async def chromium(*args: str) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with these command-line `args`, until the block ends."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=list(args)
        )
        yield browser
        await browser.close()


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """The WCAG contrast ratio of two CSS rgb() colours."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


async def low_contrast(page: Page, selectors: list[str]) -> dict[str, float]:
    """The selectors whose text is below WCAG AA (4.5:1) against its background, or missing."""
    found = await page.evaluate(_COLOURS_JS, selectors)
    ratios = {sel: contrast(fg, bg) if fg else 0.0 for sel, fg, bg in found}
    return {sel: round(ratio, 2) for sel, ratio in ratios.items() if ratio < 4.5}


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


# What the tab's pages do, recorded in the page as they do it: each fetch as it is sent (method,
# path, and the time by the page's clock), kept in sessionStorage so that the record outlives a
# page the tab leaves (it can be read from the next one: a page being left cannot be evaluated in);
# and the current page's timers set and neither fired nor cleared yet (by the name of the function
# each is to call). Added after page.clock.install(), whose fake setTimeout is the one wrapped here.
# A fetch is recorded before it is sent: the record is complete as soon as the action or clock
# call that made the page send it returns.
_WATCH_JS = """
(() => {
  const SENT = "watched-fetches";
  const pending = new Map();
  const { fetch, setTimeout, clearTimeout } = window;
  const sent = () => JSON.parse(sessionStorage.getItem(SENT) || "[]");
  window.fetch = (resource, options = {}) => {
    const url = new URL(resource instanceof Request ? resource.url : resource, location.href);
    const method = (options.method || "GET").toUpperCase();
    const entry = [method, url.pathname, performance.now()];
    sessionStorage.setItem(SENT, JSON.stringify([...sent(), entry]));
    return fetch(resource, options);
  };
  window.setTimeout = (callback, delay, ...args) => {
    const id = setTimeout(() => {
      pending.delete(id);
      callback(...args);
    }, delay);
    pending.set(id, callback.name);
    return id;
  };
  window.clearTimeout = (id) => {
    pending.delete(id);
    clearTimeout(id);
  };
  window.__watched = { sent, timers: () => [...pending.values()] };
})();
"""


async def watch(page: Page) -> None:
    """Record what the pages this tab opens next do (see sent and armed). Call before page.goto,
    and after page.clock.install if the clock is faked (fake_clock calls it)."""
    await page.context.add_init_script(_WATCH_JS)


async def fake_clock(page: Page) -> None:
    """Playwright's fake clock, paused, for the pages this tab opens next: their timers (and the
    fetch timeouts of AbortSignal.timeout, which the clock fakes too) fire only as the test moves
    the clock on with page.clock.run_for; nothing waits on real time. Call before page.goto.

    run_for fires the timers due, but a fetch one of them sends is answered in real time: before
    moving the clock on again, wait with armed() for the page to have handled it (had the clock
    moved past its timeout meanwhile, it would have been aborted)."""
    start = datetime.now(UTC)
    await page.clock.install(time=start)
    # nothing is due before the page loads; the margin is only for the call between the two
    await page.clock.pause_at(start + timedelta(seconds=5))
    await watch(page)


async def fetches(page: Page) -> list[tuple[str, str]]:
    """The fetches the tab's pages sent, in order: method and path."""
    return [(method, path) for method, path, _ in await page.evaluate("window.__watched.sent()")]


async def sent(page: Page, path: str, method: str = "GET") -> list[int]:
    """When the tab's pages sent their fetches of path (by method), in ms by the page's clock since
    the first of them."""
    times = [
        at
        for verb, url, at in await page.evaluate("window.__watched.sent()")
        if (verb, url) == (method, path)
    ]
    return [round(at - times[0]) for at in times]


async def armed(page: Page, *functions: str) -> None:
    """Wait until the page has set a timer to call each of its functions (pipeline.js's refresh,
    refreshLogs; pipelines.js's refresh): the answer to its last poll handled, the next one due."""
    try:
        await page.wait_for_function(
            "functions => functions.every(f => window.__watched.timers().includes(f))",
            arg=list(functions),
            timeout=5_000,
        )
    except PlaywrightTimeoutError:
        timers = await page.evaluate("window.__watched.timers()")
        pytest.fail(
            f"the page set no timer to call each of {list(functions)}; its timers: {timers}"
        )
