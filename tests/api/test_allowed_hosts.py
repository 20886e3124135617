"""DNS rebinding against the app served over HTTP from this process: a page of evil.example whose
name is then pointed at 127.0.0.1 sends Host and Origin evil.example:PORT, which match. What the
service answers without a key is refused to names that are not its own (IP addresses, localhost,
PIPELINE_ALLOWED_HOSTS); what needs a key is the key's to guard. In a real browser too (Debian's
headless Chromium, which resolves evil.example to 127.0.0.1); Prefect is not running."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, expect
from pydantic import ValidationError

from app.config import Settings
from app.models import Pipeline
from tests.api import test_dashboard_scripts as scripts
from tests.conftest import Configure, SetSetting
from tests.e2e.browser import chromium
from tests.support.rows import add_pipeline, count_rows

ONE_BACKEND = scripts.pytestmark  # the check is the same on both
dashboard = scripts.dashboard

MISSING_KEY = (
    "this endpoint needs an API key: send it as 'X-API-Key: <key>' or "
    "'Authorization: Bearer <key>' (keys are configured in API_KEYS)"
)


def refusal(header: str, address: str, name: str) -> str:
    return (
        f"refused: {header} {address} is not one of this service's names (IP addresses, "
        "localhost, PIPELINE_ALLOWED_HOSTS): a page whose DNS name was pointed at this service "
        f"could use it without an API key; if {name} is this service's name, add it to "
        "PIPELINE_ALLOWED_HOSTS"
    )


REBOUND = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
REFUSED = refusal("Host", "evil.example:8000", "evil.example")


@pytest.fixture
async def api(dashboard: str, configure: Configure) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app over HTTP; no names allowed beyond the built-in ones."""
    await configure(PIPELINE_ALLOWED_HOSTS="")
    async with httpx.AsyncClient(base_url=dashboard, timeout=30) as client:
        yield client


def answer(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["message"]


@ONE_BACKEND
async def test_a_rebinding_page_neither_reads_nor_writes_without_a_key(
    api: httpx.AsyncClient,
) -> None:
    await add_pipeline("secret")
    for method, path, body in (
        ("GET", "/api/pipelines", None),
        ("GET", "/api/pipelines/1", None),
        ("GET", "/api/pipelines/1/runs", None),
        ("GET", "/ready", None),
        ("GET", "/", None),  # the dashboard: refused, not a page asking for a key
        ("GET", "/pipelines/1", None),
        ("POST", "/api/pipelines", {"name": "rebound"}),
        ("POST", "/api/pipelines/1/trigger", None),
        ("DELETE", "/api/pipelines/1", None),
        ("POST", "/dashboard/key", {"key": "guess"}),
    ):
        response = await api.request(method, path, json=body, headers=REBOUND)
        assert (answer(response), response.json()["detail"]) == ((403, REFUSED), REFUSED), path
    head = await api.head("/api/pipelines", headers=REBOUND)
    assert (head.status_code, head.content) == (403, b"")
    assert await count_rows(Pipeline) == 1
    # liveness is open to any name, and says nothing else
    health = await api.get("/health", headers=REBOUND)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


@ONE_BACKEND
async def test_a_person_at_another_name_gets_a_page_saying_what_to_set(
    api: httpx.AsyncClient,
) -> None:
    """The dashboard opened at the machine's name (not a rebinding page: a person) showed the
    raw JSON of the refusal."""
    browser = {**REBOUND, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = await api.get("/", headers=browser)
    assert (page.status_code, page.headers["content-type"]) == (403, "text/html; charset=utf-8")
    assert "<h1>Not this service's name</h1><p>" + REFUSED.replace("'", "&#x27;") in page.text
    api_call = await api.get("/api/pipelines", headers=browser)  # the API stays JSON
    assert answer(api_call) == (403, REFUSED)


@ONE_BACKEND
async def test_each_forwarded_host_is_checked_too(api: httpx.AsyncClient) -> None:
    """A page's own script may send X-Forwarded-Host; the service takes it as where the browser
    was (app/api/auth.py), so each entry must be one of its names as Host must."""
    for forwarded in ("evil.example:8000", "localhost, evil.example:8000"):
        response = await api.post(
            "/api/pipelines",
            json={"name": "p"},
            headers={"X-Forwarded-Host": forwarded, "Origin": "http://evil.example:8000"},
        )
        assert answer(response) == (
            403,
            refusal("X-Forwarded-Host", "evil.example:8000", "evil.example"),
        )
    assert await count_rows(Pipeline) == 0


@ONE_BACKEND
async def test_addresses_and_localhost_need_no_entry(api: httpx.AsyncClient) -> None:
    hosts = (
        "127.0.0.1:8000",
        "[::1]:8000",
        "localhost:8000",
        "LocalHost.",
        "dashboard.localhost:8000",
        "192.0.2.2",
        "[2001:db8::1]",
    )
    for number, host in enumerate(hosts):
        page = {"Host": host, "Origin": f"http://{host}"}
        read = await api.get("/api/pipelines", headers=page)
        assert (read.status_code, read.json()["total"]) == (200, number), host
        created = await api.post("/api/pipelines", json={"name": f"p{number}"}, headers=page)
        assert created.status_code == 201, host
        assert (await api.get("/", headers={"Host": host})).status_code == 200, host
    for host, name in (
        ("127.0.0.1.evil.example", "127.0.0.1.evil.example"),
        ("localhost.evil.example:8000", "localhost.evil.example"),
        ("evil-localhost:8000", "evil-localhost"),
        ("[evil.example]:8000", "[evil.example]:8000"),  # no IPv6 address
        ("::1", "::1"),  # an IPv6 address without its brackets
    ):
        response = await api.get("/api/pipelines", headers={"Host": host})
        assert answer(response) == (403, refusal("Host", host, name)), host
    assert await count_rows(Pipeline) == len(hosts)


@ONE_BACKEND
async def test_listed_names_and_their_subdomains_pass(
    api: httpx.AsyncClient, configure: Configure
) -> None:
    await configure(PIPELINE_ALLOWED_HOSTS=" Pipelines.Example.com, .corp.example.,")
    for host, status in (
        ("pipelines.example.com", 200),
        ("PIPELINES.EXAMPLE.COM.:8443", 200),  # any port, any case, a trailing dot
        ("corp.example", 200),
        ("a.b.corp.example:8000", 200),
        ("example.com", 403),
        ("www.pipelines.example.com", 403),  # a name, not its subdomains
        ("notcorp.example", 403),
        ("evil.example:8000", 403),
    ):
        response = await api.get("/api/pipelines", headers={"Host": host})
        assert response.status_code == status, host
    behind_a_proxy = {
        "Host": "127.0.0.1:8000",
        "X-Forwarded-Host": "pipelines.example.com",
        "Origin": "https://pipelines.example.com",
    }
    created = await api.post("/api/pipelines", json={"name": "p"}, headers=behind_a_proxy)
    assert created.status_code == 201


@ONE_BACKEND
async def test_a_starred_domain_allows_its_subdomains(
    api: httpx.AsyncClient, configure: Configure
) -> None:
    """Starlette's TrustedHostMiddleware writes subdomains `*.example.com`: accepted, it matched
    nothing, and each request's 403 said to add the name already listed."""
    await configure(PIPELINE_ALLOWED_HOSTS="*.example.com")
    for host, status in (
        ("pipelines.example.com", 200),
        ("a.b.example.com:8000", 200),
        ("example.com", 403),  # subdomains only, as Starlette reads it
        ("notexample.com", 403),
    ):
        response = await api.get("/api/pipelines", headers={"Host": host})
        assert response.status_code == status, host


@ONE_BACKEND
async def test_a_star_allows_any_name(api: httpx.AsyncClient, configure: Configure) -> None:
    await configure(PIPELINE_ALLOWED_HOSTS="*")
    assert (await api.get("/api/pipelines", headers=REBOUND)).status_code == 200
    created = await api.post("/api/pipelines", json={"name": "p"}, headers=REBOUND)
    assert created.status_code == 201
    assert (await api.get("/", headers={"Host": "[not an address]"})).status_code == 200


@ONE_BACKEND
async def test_what_needs_a_key_is_the_keys_to_guard(
    api: httpx.AsyncClient, configure: Configure
) -> None:
    """A rebinding page cannot send the key: it does not know it, and the browser keeps the
    dashboard's cookie for the service's own name. A deployment with keys behind a domain name
    needs no list for what the key guards; what stays open is checked."""
    await configure(PIPELINE_ALLOWED_HOSTS="", API_KEYS="alpha")
    keyed = {**REBOUND, "X-API-Key": "alpha"}
    cookie = {**REBOUND, "Cookie": "pipeline_api_key=alpha"}
    assert answer(await api.get("/api/pipelines", headers=REBOUND)) == (403, REFUSED)
    without = await api.post("/api/pipelines", json={"name": "p"}, headers=REBOUND)
    assert answer(without) == (401, MISSING_KEY)  # what to fix is the key, not the name
    assert (await api.post("/api/pipelines", json={"name": "p"}, headers=keyed)).status_code == 201
    assert (await api.post("/api/pipelines", json={"name": "q"}, headers=cookie)).status_code == 201

    await configure(API_KEYS_FOR_READS="true")
    assert answer(await api.get("/api/pipelines", headers=REBOUND)) == (401, MISSING_KEY)
    listed = await api.get("/api/pipelines", headers=keyed)
    assert (listed.status_code, listed.json()["total"]) == (200, 2)
    assert (await api.get("/", headers=cookie)).status_code == 200
    assert await count_rows(Pipeline) == 2


@pytest.mark.parametrize(
    "entry",
    ["https://pipelines.example.com", "pipelines.example.com:8443", "[::1]", "pipe*.example.com"],
)
def test_the_setting_takes_names_only(setting: SetSetting, entry: str) -> None:
    """A URL or a port never matched a Host name: every request was refused."""
    setting("PIPELINE_ALLOWED_HOSTS", f"localhost, {entry}")
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None)
    assert [(e["loc"], e["msg"]) for e in raised.value.errors()] == [
        (
            ("PIPELINE_ALLOWED_HOSTS",),
            f"Value error, {entry!r} is not a host name: list names without scheme or port "
            "(pipelines.example.com; .example.com for it and its subdomains, *.example.com for "
            "its subdomains; * for any); IP addresses need no entry",
        )
    ]


# The rebinding page: what it reads and the status of what it writes, in its title.
REBINDING = """<!doctype html><title>loading</title><script>
(async () => {
  const read = await fetch("/api/pipelines");
  const created = await fetch("/api/pipelines", {
    method: "POST", headers: {"content-type": "application/json"}, body: '{"name": "rebound"}',
  });
  const deleted = await fetch("/api/pipelines/1", { method: "DELETE" });
  document.title = JSON.stringify([read.status, await read.text(), created.status, deleted.status]);
})();
</script>"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Chromium whose DNS answers evil.example with 127.0.0.1: the rebinding's second answer.
    Its own guard, which blocks a public page's requests to a loopback or private address, is
    off: Firefox and Safari have none, and it is Chromium's, not this service's."""
    async with chromium(
        "--host-resolver-rules=MAP evil.example 127.0.0.1",
        # Local Network Access, and Private Network Access before it
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests",
    ) as launched:
        yield launched


@ONE_BACKEND
async def test_a_rebinding_page_in_a_browser_reads_and_writes_nothing(
    browser: Browser, api: httpx.AsyncClient, dashboard: str
) -> None:
    """The page came from evil.example's first answer (here: from the test); its requests go to
    the service under the page's own origin, and their answers are the page's to read."""
    await add_pipeline("secret")
    evil = dashboard.replace("127.0.0.1", "evil.example")
    context = await browser.new_context()
    page = await context.new_page()
    await page.route(
        f"{evil}/rebind.html", lambda route: route.fulfill(body=REBINDING, content_type="text/html")
    )
    await page.goto(f"{evil}/rebind.html")
    await expect(page).not_to_have_title("loading")
    read_status, read_body, created, deleted = json.loads(await page.title())
    await context.close()
    port = evil.rsplit(":", 1)[1]
    refused = refusal("Host", f"evil.example:{port}", "evil.example")
    assert (read_status, json.loads(read_body), created, deleted) == (
        403,
        {"message": refused, "detail": refused},
        403,
        403,
    )
    assert await count_rows(Pipeline) == 1
