"""Writes sent by another origin's page are refused by their Origin (or Referer): browsers mark a
request with Sec-Fetch-Site only to https and localhost, and over http to a LAN address a page
could post a form or an upload here, keys unset. Clients that send neither header pass."""

from collections.abc import AsyncIterator

import httpx
import pytest
from httpx import ASGITransport
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app
from app.models import Pipeline
from tests.conftest import Configure, SetSetting
from tests.support.rows import count_rows

FORM = {"file": ("x.csv", b"id,name\n1,a\n", "text/csv")}


def refusal(sent_by: str) -> str:
    return (
        f"refused: this write came from a page of another site or origin ({sent_by}); write "
        "through this service's dashboard, the pipeline CLI or an HTTP client"
    )


@pytest.fixture
async def lan(database: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API as a LAN address reaches it: Host 192.0.2.2:8000."""
    async with httpx.AsyncClient(
        transport=ASGITransport(app=create_app()), base_url="http://192.0.2.2:8000"
    ) as client:
        yield client


async def test_a_write_from_another_origins_page_is_refused(lan: httpx.AsyncClient) -> None:
    cases = {
        "http://192.0.2.2:18603": "Origin: http://192.0.2.2:18603, not 192.0.2.2:8000",
        "http://evil.example": "Origin: http://evil.example, not 192.0.2.2:8000",
        "http://192.0.2.2": "Origin: http://192.0.2.2, not 192.0.2.2:8000",
        "null": "Origin: null, a sandboxed page or a local file",
        "http://[::1": "Origin: http://[::1, not 192.0.2.2:8000",
    }
    for origin, sent_by in cases.items():
        for method, path, files in (
            ("POST", "/api/pipelines", FORM),  # an upload: multipart, no CORS preflight
            ("POST", "/api/pipelines/1/trigger", None),
            ("POST", "/api/pipelines/1/retry", None),
            ("POST", "/api/pipelines/1/cancel", None),
            ("DELETE", "/api/pipelines/1", None),
            ("POST", "/api/pipelines/1/schedule/pause", None),
        ):
            response = await lan.request(method, path, files=files, headers={"Origin": origin})
            assert (response.status_code, response.json()["message"]) == (
                403,
                refusal(sent_by),
            ), (origin, path)
    referer = {"Referer": "http://user:pw@evil.example:3000/attack.html?token=t"}
    response = await lan.post("/api/pipelines", files=FORM, headers=referer)
    assert (response.status_code, response.json()["message"]) == (
        403,
        refusal("Referer: http://evil.example:3000, not 192.0.2.2:8000"),
    )
    assert await count_rows(Pipeline) == 0


async def test_the_services_own_pages_and_clients_may_write(lan: httpx.AsyncClient) -> None:
    for number, headers in enumerate(
        (
            {"Origin": "http://192.0.2.2:8000"},  # the dashboard
            {"Origin": "https://192.0.2.2:8000"},  # behind a TLS-terminating proxy
            {"Referer": "http://192.0.2.2:8000/pipelines/1"},  # a browser that sends no Origin
            {},  # curl, the CLI
            {"Origin": "http://192.0.2.2:8000", "Sec-Fetch-Site": "same-origin"},
        )
    ):
        created = await lan.post("/api/pipelines", json={"name": f"p{number}"}, headers=headers)
        assert created.status_code == 201, headers
    assert await count_rows(Pipeline) == 5


async def test_the_address_a_proxy_was_asked_for_is_the_services(configure: Configure) -> None:
    """Behind a proxy, Host is the proxy's upstream and X-Forwarded-Host the browser's; default
    ports are no ports, whatever the scheme. Its name is listed, as keyless it must be."""
    await configure(PIPELINE_ALLOWED_HOSTS="pipelines.example.com")
    app = create_app()
    async with httpx.AsyncClient(
        transport=ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as proxied:
        forwarded = {"X-Forwarded-Host": "pipelines.example.com, 127.0.0.1:8000"}
        for origin, status in (
            ("https://pipelines.example.com", 201),
            ("http://pipelines.example.com:80", 201),
            ("https://pipelines.example.com:8443", 403),
            ("http://pipelines.example.com:443", 403),  # plain http on 443 is no https page
            ("http://127.0.0.1:8000", 201),  # the service's own page, reached past the proxy
        ):
            response = await proxied.post(
                "/api/pipelines", json={"name": "p"}, headers={**forwarded, "Origin": origin}
            )
            assert response.status_code == status, origin
        direct = await proxied.post(
            "/api/pipelines",
            json={"name": "p"},
            headers={"Origin": "https://pipelines.example.com"},
        )
        assert (direct.status_code, direct.json()["message"]) == (
            403,
            refusal("Origin: https://pipelines.example.com, not 127.0.0.1:8000"),
        )
    async with httpx.AsyncClient(
        transport=ASGITransport(app=app), base_url="https://Pipelines.Example.com"
    ) as tls:
        same = await tls.post(
            "/api/pipelines",
            json={"name": "p"},
            headers={"Origin": "https://pipelines.example.com"},
        )
        assert same.status_code == 201
    assert await count_rows(Pipeline) == 4


async def test_reads_from_other_origins_are_answered(lan: httpx.AsyncClient) -> None:
    """A read changes nothing, and the browser keeps its answer from the other origin's page."""
    listed = await lan.get("/api/pipelines", headers={"Origin": "http://evil.example"})
    assert (listed.status_code, listed.json()["total"]) == (200, 0)
    # no CORS grant: the other origin's page may send the read, but its script cannot see it
    assert "access-control-allow-origin" not in listed.headers


async def test_a_proxy_that_drops_the_port_needs_its_port_or_the_trusted_origins(
    database: str, configure: Configure
) -> None:
    """nginx's $host has no port: a dashboard on a proxy's port 18762 was refused on every write
    (Origin: http://pipelines.test:18762, not pipelines.test). X-Forwarded-Port, or
    PIPELINE_TRUSTED_ORIGINS, names it."""
    async with httpx.AsyncClient(
        transport=ASGITransport(app=create_app()), base_url="http://pipelines.test"
    ) as proxied:
        page = {"Origin": "http://pipelines.test:18762"}

        async def create(**headers: str) -> int:
            response = await proxied.post("/api/pipelines", json={"name": "p"}, headers=headers)
            return response.status_code

        assert await create(**page) == 403
        assert await create(**page, **{"X-Forwarded-Host": "pipelines.test"}) == 403
        forwarded = {"X-Forwarded-Host": "pipelines.test", "X-Forwarded-Port": "18762"}
        assert await create(**page, **forwarded) == 201
        # an explicit port on plain http is no https page's: http://h:443 is not https://h
        assert await create(Origin="http://pipelines.test:443") == 403
        await configure(
            PIPELINE_TRUSTED_ORIGINS="https://ops.example, http://pipelines.test:18762/"
        )
        assert await create(**page) == 201
        assert await create(Origin="http://pipelines.test:18763") == 403
        # written as a person may write it: case, default port, a trailing slash
        await configure(PIPELINE_TRUSTED_ORIGINS="HTTPS://Ops.Example:443/")
        assert await create(Origin="https://ops.example") == 201
        assert await create(Origin="http://ops.example") == 403
    assert await count_rows(Pipeline) == 3


@pytest.mark.parametrize(
    "entry",
    ["notaurl", "ops.example", "https://ops.example/dashboard", "ftp://ops.example", "https://u@h"],
)
def test_the_trusted_origins_are_origins(setting: SetSetting, entry: str) -> None:
    """`PIPELINE_TRUSTED_ORIGINS=ops.example` started the stack and never matched a page's
    Origin (`https://ops.example`): the writes it was set for were refused with a 403."""
    setting("PIPELINE_TRUSTED_ORIGINS", f"https://ops.example, {entry}")
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None)
    assert [(e["loc"], e["msg"]) for e in raised.value.errors()] == [
        (
            ("PIPELINE_TRUSTED_ORIGINS",),
            f"Value error, {entry!r} is not an origin: list each as a browser sends it, "
            "scheme://host[:port] without a path (https://pipelines.example.com, "
            "http://10.0.0.5:8080)",
        )
    ]


async def test_a_second_key_cookie_another_page_set_is_no_key(
    lan: httpx.AsyncClient, configure: Configure
) -> None:
    """A page of another port or subdomain can set a cookie of the same name (not read the
    server's HttpOnly one); the browser sends both and the last one counted: the dashboard was
    stuck with the other page's key. Two are no key: saving it again clears the other one."""
    await configure(API_KEYS="alpha")
    own = {"Origin": "http://192.0.2.2:8000"}
    one = await lan.post(
        "/api/pipelines", json={"name": "p"}, headers={**own, "Cookie": "pipeline_api_key=alpha"}
    )
    assert one.status_code == 201
    two = await lan.post(
        "/api/pipelines",
        json={"name": "p"},
        headers={**own, "Cookie": "pipeline_api_key=alpha; pipeline_api_key=bogus"},
    )
    assert (two.status_code, two.json()["message"]) == (
        401,
        "this endpoint needs an API key: send it as 'X-API-Key: <key>' or "
        "'Authorization: Bearer <key>' (keys are configured in API_KEYS)",
    )
