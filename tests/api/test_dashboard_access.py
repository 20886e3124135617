"""The dashboard's HTML routes: 404s, nothing loaded from elsewhere, and API keys for reads."""

from pathlib import Path

import httpx

from app.config import PROJECT_ROOT
from tests.conftest import Configure
from tests.support.html import parse
from tests.support.rows import add_pipeline


async def test_unknown_pipeline_is_a_404_page(client: httpx.AsyncClient) -> None:
    for pipeline_id in ("42", "0", "abc", "99999999999"):
        response = await client.get(f"/pipelines/{pipeline_id}")
        assert response.status_code == 404, pipeline_id
        page = parse(response.text)
        assert page.select("h1")[0].text == "Pipeline not found"
        assert page.select("p", "notice")[0].text == f"pipeline {pipeline_id} not found"
    fragment = await client.get("/pipelines/42/progress")
    assert (fragment.status_code, fragment.text) == (404, "pipeline 42 not found")
    assert fragment.headers["content-type"] == "text/plain; charset=utf-8"
    escaped = await client.get("/pipelines/%3Cb%3E")
    assert (escaped.status_code, "<b>" in escaped.text) == (404, False)


async def test_pages_load_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    page = parse(response.text)
    assert [e.attrs["src"] for e in page.select("script")] == [
        "/static/dashboard.js",
        "/static/pipelines.js",
    ]
    assert [e.attrs["href"] for e in page.select("link")] == [
        "/static/favicon.svg",
        "/static/dashboard.css",
    ]
    # every file the static folder serves, so a new one is checked too (log_tail.js was not)
    assets = sorted(p.name for p in (PROJECT_ROOT / "app/web/static").iterdir() if p.is_file())
    assert assets == [
        "dashboard.css",
        "dashboard.js",
        "favicon.svg",
        "log_tail.js",
        "pipeline.js",
        "pipelines.js",
    ]
    media_types = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
    }
    for name in assets:
        path, media_type = f"/static/{name}", media_types[Path(name).suffix]
        asset = await client.get(path)
        assert (asset.status_code, asset.headers["content-type"]) == (200, media_type)
        if not path.endswith(".svg"):  # an SVG names its XML namespace with a URL
            assert "://" not in asset.text, path


async def test_read_keys_lock_the_pages_until_the_key_cookie_is_sent(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    pipeline_id = await add_pipeline("secret")
    assert not parse((await client.get("/")).text).has_id("api-key-panel")  # no keys: no field

    await configure(API_KEYS="alpha")
    open_page = await client.get("/")
    assert open_page.status_code == 200  # reads stay open; writes need the key
    key_field = parse(open_page.text).by_id("api-key")
    assert key_field.attrs["type"] == "password"
    # no name, and a form that submits nowhere: without JavaScript the key never goes in a URL
    assert "name" not in key_field.attrs
    assert parse(open_page.text).by_id("api-key-form").attrs["method"] == "dialog"

    key = "k;=% é"
    cookie = {"Cookie": "pipeline_api_key=k%3B%3D%25%20%C3%A9"}  # as POST /dashboard/key sets it
    await configure(API_KEYS=f"alpha,{key}", API_KEYS_FOR_READS="true")
    locked = await client.get("/")
    assert locked.status_code == 401
    page = parse(locked.text)
    assert page.select("h1")[0].text == "An API key is needed"
    assert "open" in page.by_id("api-key-panel").attrs
    assert "secret" not in locked.text
    assert (await client.get(f"/pipelines/{pipeline_id}")).status_code == 401
    for fragment_path in (f"/pipelines/{pipeline_id}/progress", "/pipelines-list"):
        fragment = await client.get(fragment_path)
        assert (fragment.status_code, fragment.text) == (
            401,
            "reading needs an API key: enter it under 'API key'",
        ), fragment_path
    wrong = await client.get("/", headers={"Cookie": "pipeline_api_key=beta"})
    assert wrong.status_code == 401
    # the reader is told the saved key is wrong, not asked again as if none was saved
    assert (
        parse(wrong.text)
        .by_id("key-refused")
        .text.startswith(
            "The key saved for this session was refused: it is not one of this server's keys."
        )
    )
    refused_fragment = await client.get(
        "/pipelines-list", headers={"Cookie": "pipeline_api_key=beta"}
    )
    assert (refused_fragment.status_code, refused_fragment.text) == (
        401,
        "the API key saved for this session was refused: enter a valid one under 'API key'",
    )

    for path in (
        "/",
        "/pipelines-list",
        f"/pipelines/{pipeline_id}",
        f"/api/pipelines/{pipeline_id}",
    ):
        assert (await client.get(path, headers=cookie)).status_code == 200, path
    assert (await client.get("/", headers={"X-API-Key": "alpha"})).status_code == 200
    # a write counts the cookie only when its Origin is this service's (test_dashboard_key.py)
    write = await client.post(f"/api/pipelines/{pipeline_id}/trigger", headers=cookie)
    assert write.status_code == 401
