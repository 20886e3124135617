"""The service behind a proxy that serves it under a prefix and strips it (`UVICORN_ROOT_PATH=
/pipelines`): uvicorn's scope then holds the prefix in its path, as this in-process client's does.
Uploads larger than PIPELINE_MAX_BODY_BYTES were refused (413), query parameters went unchecked,
/health was refused to a load balancer's name, and the dashboard's links and scripts left the
prefix (every one a 404 through the proxy)."""

import shutil
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx import ASGITransport

from app.main import create_app
from app.models import STAGE_NAMES, Status
from app.pipeline.store import RunFiles, runs_dir
from tests.conftest import Configure, SetSetting
from tests.support.html import Element, parse
from tests.support.rows import add_pipeline, add_run, done

PREFIX = "/pipelines"
HOST = "http://127.0.0.1"
HEADER = "id,name,category,value,quantity,is_active,created_at"


@pytest.fixture
async def proxied(database: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API as a proxy that strips PREFIX hands it requests: paths are written as the
    routes are (`/api/pipelines`), sent as `/pipelines/api/pipelines`."""
    app = create_app()
    async with httpx.AsyncClient(
        transport=ASGITransport(app=app, root_path=PREFIX), base_url=f"{HOST}{PREFIX}"
    ) as http:
        yield http


async def test_an_upload_larger_than_a_json_body_may_be_is_taken_under_the_prefix(
    proxied: httpx.AsyncClient, setting: SetSetting
) -> None:
    setting("PIPELINE_MAX_BODY_BYTES", "4096")
    rows = [f"{i},row {i},A,10.5,2,true,2026-03-01 12:00:00" for i in range(1, 201)]
    content = "\n".join([HEADER, *rows]).encode() + b"\n"
    assert len(content) > 4096
    created = await proxied.post(
        "/api/pipelines", data={"name": "big"}, files={"file": ("big.csv", content)}
    )
    assert created.status_code == 201, created.text
    assert created.json()["record_count"] == 200
    json_body = {"name": "x" * 5000}  # the JSON body's own limit still holds
    refused = await proxied.post("/api/pipelines", json=json_body)
    assert refused.status_code == 413


async def test_query_parameters_are_checked_under_the_prefix(proxied: httpx.AsyncClient) -> None:
    unknown = await proxied.get("/api/pipelines", params={"stauts": "failed"})
    assert (unknown.status_code, unknown.json()["message"]) == (
        422,
        "stauts: not a parameter of this route (did you mean status?); it takes page, page_size and "
        "status",
    )
    repeated = await proxied.get("/api/pipelines?page=1&page=2")
    assert (repeated.status_code, repeated.json()["message"]) == (
        422,
        "page: given 2 times; give it once",
    )


async def test_health_answers_any_name_under_the_prefix(
    proxied: httpx.AsyncClient, configure: Configure
) -> None:
    """A load balancer's probe by the container's name: /health is open to every name."""
    await configure(API_KEYS="a-key-of-this-service")
    health = await proxied.get("/health", headers={"Host": "pipelines-api:8000"})
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    listed = await proxied.get("/api/pipelines", headers={"Host": "pipelines-api:8000"})
    assert listed.status_code == 403  # an open read still goes only to the service's own names


def _addresses(page: Element) -> list[str]:
    """Every address the page links, loads or submits to, but in-page anchors and other sites."""
    found = [
        value
        for element in page.find_all(lambda e: True)
        for name in ("href", "src", "action")
        if (value := element.attrs.get(name)) is not None
    ]
    return [a for a in found if not a.startswith(("#", "http://", "https://"))]


async def test_every_address_of_the_dashboard_keeps_the_prefix_and_answers(
    proxied: httpx.AsyncClient,
) -> None:
    shutil.rmtree(runs_dir(), ignore_errors=True)
    pipeline_id = await add_pipeline("behind a proxy")
    stages = {name: done(0.5, 1000, 1000) for name in STAGE_NAMES}
    run_id = await add_run(pipeline_id, Status.COMPLETED, stages, duration_seconds=4.5)
    files = RunFiles.for_run(run_id)
    for path in (files.results, files.summary):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    for page_path in ("/", f"/pipelines/{pipeline_id}", "/pipelines/99", "/docs"):
        response = await proxied.get(page_path)
        page = parse(response.text)
        addresses = _addresses(page)
        assert addresses, page_path
        assert [a for a in addresses if not a.startswith(f"{PREFIX}/")] == [], page_path
        if page_path != "/docs":
            assert page.find_all(lambda e: e.tag == "body")[0].attrs["data-root"] == PREFIX
        for address in addresses:
            if address.startswith(f"{PREFIX}/api/"):  # downloads of empty files: they exist
                continue
            followed = await proxied.get(f"{HOST}{address}")
            assert followed.status_code == 200, (page_path, address)
    downloads = _addresses(parse((await proxied.get(f"/pipelines/{pipeline_id}")).text))
    base = f"{PREFIX}/api/pipelines/{pipeline_id}/runs/{run_id}"
    assert [a for a in downloads if a.startswith(f"{PREFIX}/api/")] == [
        f"{base}/output?format=parquet",
        f"{base}/output?format=csv",
        f"{base}/output?format=jsonl",
        f"{base}/summary",
        f"{PREFIX}/api/pipelines/{pipeline_id}/logs?limit=200&tail=true",
    ]


async def test_the_key_cookie_is_the_services_alone_under_the_prefix(
    proxied: httpx.AsyncClient, configure: Configure
) -> None:
    """Path=/ sent the key to every other application the host serves under its own prefix."""
    await configure(API_KEYS="k")
    own = {"Origin": HOST}
    saved = await proxied.post("/dashboard/key", json={"key": "k"}, headers=own)
    assert (saved.status_code, saved.headers.get_list("set-cookie")) == (
        204,
        [f"pipeline_api_key=k; HttpOnly; Path={PREFIX}; SameSite=lax"],
    )
    forgotten = await proxied.delete("/dashboard/key", headers=own)
    assert forgotten.headers["set-cookie"].endswith(
        f"; HttpOnly; Max-Age=0; Path={PREFIX}; SameSite=lax"
    )
