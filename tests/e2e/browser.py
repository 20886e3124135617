"""Helpers of the browser tests: Debian's Chromium under Playwright, contrast and screenshots."""

import re
import shutil

import pytest
from playwright.async_api import Page

from app.config import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "tests" / "results" / "screenshots"

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
