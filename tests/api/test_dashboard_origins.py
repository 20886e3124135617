"""Another origin's pages in a real browser (Debian's headless Chromium) against the app served
from this process: over plain http to an address that is not localhost (a LAN address: Chromium
sends no Sec-Fetch-Site there) they cannot write, and no page of another port of this host reads
the dashboard's API key. The dashboard's own writes still go through. Host names ending in .test
are resolved to 127.0.0.1 by the browser; Prefect is not running."""

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from playwright.async_api import Browser, Page, Response, expect

from app.models import Pipeline, PipelineRun, Status
from tests.api import test_dashboard_scripts as scripts
from tests.conftest import Configure
from tests.e2e.browser import PREFECT_REFUSED_MS, chromium
from tests.support.rows import add_pipeline, add_run, count_rows

pytestmark = scripts.pytestmark  # one backend is enough for the browser
dashboard = scripts.dashboard

UNREACHABLE = (
    "Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
    "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
)
FAILED = "Failed to load resource: the server responded with a status of {}"

# Posts what the reviewer's page posted: an upload (multipart, so no CORS preflight) and a
# bodiless retry, no-cors; then says it is done.
ATTACK = """<!doctype html><title>loading</title><script>
(async () => {
  const form = new FormData();
  form.append("name", "forged");
  const rows = "id,name,category,value,quantity,is_active,created_at\\n1,a,A,10,1,true,2024-01-01\\n";
  form.append("file", new Blob([rows]), "x.csv");
  const target = "%s";
  await fetch(target + "/api/pipelines", { method: "POST", mode: "no-cors", body: form });
  await fetch(target + "/api/pipelines/1/retry", { method: "POST", mode: "no-cors" });
  document.title = "done";
})();
</script>"""
READ_COOKIES = "<!doctype html><script>document.title = 'cookie:' + document.cookie;</script>"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Chromium that resolves every *.test name to 127.0.0.1: addresses that are not
    "potentially trustworthy", as a LAN address is not."""
    async with chromium("--host-resolver-rules=MAP *.test 127.0.0.1") as launched:
        yield launched


@pytest.fixture
async def other_site() -> AsyncIterator[tuple[int, dict[str, str]]]:
    """Another web server of this host (a notebook, a dev server): its port and its pages by
    path, which the test sets."""
    pages: dict[str, str] = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1].decode()
        body = pages.get(path, "").encode()
        status = b"200 OK" if path in pages else b"404 Not Found"
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, sock=scripts._listening_socket())
    yield server.sockets[0].getsockname()[1], pages
    server.close()
    await server.wait_closed()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    await tab.route("**/api/schedules", lambda route: route.fulfill(json=[]))
    yield tab
    await context.close()


def statuses(page: Page, wanted: Callable[[Response], bool]) -> list[int]:
    """The status of each response the tab gets that is wanted, in order."""
    seen: list[int] = []
    page.on("response", lambda response: seen.append(response.status) if wanted(response) else None)
    return seen


async def test_a_page_of_another_origin_cannot_write_to_a_lan_address(
    page: Page, dashboard: str, other_site: tuple[int, dict[str, str]]
) -> None:
    """Without API_KEYS: the upload made a pipeline and the retry was tried; Chromium marks
    neither with Sec-Fetch-Site over http to a LAN address, and both carry an Origin."""
    port, pages = other_site
    pipeline_id = await add_pipeline("kept")
    await add_run(pipeline_id, Status.FAILED, {})
    target = dashboard.replace("127.0.0.1", "pipelines.test")
    pages["/"] = ATTACK % target
    writes = statuses(page, lambda response: response.url.startswith(f"{target}/api/"))
    for attacker in (f"http://attacker.test:{port}/", f"http://pipelines.test:{port}/"):
        await page.goto(attacker)
        await expect(page).to_have_title("done")
    assert writes == [403, 403, 403, 403]
    assert await count_rows(Pipeline) == 1  # the one added above
    assert await count_rows(PipelineRun) == 1  # not retried


async def test_the_dashboard_writes_from_a_lan_address(
    page: Page, dashboard: str, configure: Configure
) -> None:
    """Its own page's Origin is the address it was opened at: the key is saved, and the create
    form's write is let through (to Prefect, which is not running here)."""
    await configure(API_KEYS="alpha")
    lan = dashboard.replace("127.0.0.1", "pipelines.test")
    writes = statuses(page, lambda response: response.request.method != "GET")
    await page.goto(f"{lan}/")
    await page.locator("summary", has_text="API key").click()
    await page.locator("#api-key").fill("alpha")
    await page.locator("#api-key").press("Enter")
    await expect(page.locator("#api-key-status")).to_have_text("Key saved for this session.")
    await page.get_by_label("Name").fill("from the LAN")
    await page.get_by_label("Records to generate").fill("1000")
    await page.locator("#create-submit").click()
    await expect(page.locator("#form-error")).to_have_text(UNREACHABLE, timeout=PREFECT_REFUSED_MS)
    assert writes == [204, 503]


async def test_no_page_of_another_port_reads_the_key_and_the_dashboard_uses_it(
    page: Page, dashboard: str, configure: Configure, other_site: tuple[int, dict[str, str]]
) -> None:
    """Cookies are per host, not per port: the key the dashboard's script kept in one was any
    local page's to read. The server sets it HttpOnly now; reads and writes still carry it."""
    await configure(API_KEYS="alpha", API_KEYS_FOR_READS="true")
    port, pages = other_site
    pages["/steal.html"] = READ_COOKIES
    await page.goto(f"{dashboard}/")
    await expect(page.locator("h1")).to_have_text("An API key is needed")
    saves = statuses(page, lambda response: response.url.endswith("/dashboard/key"))
    await page.locator("#api-key").fill("wrong")
    await page.locator("#api-key").press("Enter")  # not kept: the page says so, and stays
    await expect(page.locator("#api-key-status")).to_have_text(
        "Not saved: not one of this server's API keys; check it against API_KEYS"
    )
    await expect(page.locator("h1")).to_have_text("An API key is needed")
    assert saves == [422]
    await page.locator("#api-key").fill("alpha")
    await page.locator("#api-key").press("Enter")
    await expect(page.locator("h1")).to_have_text("Pipelines")
    await expect(page.locator("#api-key-status")).to_have_text("A key is saved for this session.")
    cookies = await page.context.cookies()
    assert [
        (c["name"], c["value"], c["httpOnly"], c["sameSite"], c["secure"], c["expires"])
        for c in cookies
    ] == [("pipeline_api_key", "alpha", True, "Lax", False, -1)]
    assert await page.evaluate("document.cookie") == ""

    await page.goto(f"http://127.0.0.1:{port}/steal.html")
    await expect(page).to_have_title("cookie:")

    await page.goto(f"{dashboard}/")
    writes = statuses(page, lambda response: response.request.method != "GET")
    await page.get_by_label("Name").fill("with the cookie")
    await page.get_by_label("Records to generate").fill("1000")
    await page.locator("#create-submit").click()
    await expect(page.locator("#form-error")).to_have_text(
        UNREACHABLE, timeout=PREFECT_REFUSED_MS
    )  # not a 401
    await page.locator("#api-key-panel summary").click()
    await page.locator("#api-key-forget").click()
    await expect(page.locator("#api-key-status")).to_have_text("Key forgotten.")
    assert (writes, await page.context.cookies()) == ([503, 204], [])
