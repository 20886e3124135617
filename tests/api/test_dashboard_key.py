"""The dashboard's API key: set and forgotten by the server in an HttpOnly cookie (a script set
it, and any page on another port of this host could read it), only from the service's own pages;
it counts for reads, and for the writes those pages send."""

import httpx

from app.models import Status
from tests.conftest import Configure
from tests.support.html import parse
from tests.support.rows import add_pipeline, add_run

OWN = {"Origin": "http://test"}  # the in-process client's address is http://test


async def test_the_server_keeps_the_key_in_an_httponly_session_cookie(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    await configure(API_KEYS="k;=% é,k")
    saved = await client.post("/dashboard/key", json={"key": " k;=% é "}, headers=OWN)
    assert (saved.status_code, saved.content) == (204, b"")
    assert saved.headers.get_list("set-cookie") == [
        "pipeline_api_key=k%3B%3D%25%20%C3%A9; HttpOnly; Path=/; SameSite=lax"
    ]
    tls = await client.post("/dashboard/key", json={"key": "k"}, headers={"Origin": "https://test"})
    assert tls.headers.get_list("set-cookie") == [
        "pipeline_api_key=k; HttpOnly; Path=/; SameSite=lax; Secure"
    ]
    forgotten = await client.delete("/dashboard/key", headers=OWN)
    assert forgotten.status_code == 204
    cookie = forgotten.headers["set-cookie"]
    assert cookie.startswith('pipeline_api_key=""; expires=')
    assert cookie.endswith("; HttpOnly; Max-Age=0; Path=/; SameSite=lax")


async def test_only_the_services_own_pages_may_set_or_forget_the_key(
    client: httpx.AsyncClient,
) -> None:
    refused = (
        "refused: this write came from a page of another site or origin ({}); write through this "
        "service's dashboard, the pipeline CLI or an HTTP client"
    )
    for method, body in (("POST", {"key": "attacker's"}), ("DELETE", None)):
        for headers, sent_by in (
            ({"Origin": "http://test:3000"}, "Origin: http://test:3000, not test"),
            ({"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site: same-site"),
        ):
            response = await client.request(method, "/dashboard/key", json=body, headers=headers)
            assert (response.status_code, response.json()["message"]) == (
                403,
                refused.format(sent_by),
            )
            assert "set-cookie" not in response.headers


async def test_a_key_that_cannot_be_kept_is_a_422_naming_it(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    await configure(API_KEYS=f"alpha,{'é' * 500}")
    for body, message in (
        ({"key": "  "}, "key: enter one of the server's API_KEYS"),
        (
            {"key": "é" * 501},  # 3,006 bytes URL-encoded
            "key: longer than a browser keeps in a cookie (3,000 bytes URL-encoded); use a "
            "shorter API key",
        ),
        ({"key": 7}, "key: must be text (in quotes), not 7"),
        ({}, "key: Field required"),
        (
            {"key": "alpha", "remember": True},
            "remember: unknown field; remove it (see /docs for the accepted fields)",
        ),
    ):
        response = await client.post("/dashboard/key", json=body, headers=OWN)
        assert (response.status_code, response.json()["message"]) == (422, message), body
        assert "set-cookie" not in response.headers
    fits = await client.post("/dashboard/key", json={"key": "é" * 500}, headers=OWN)
    assert fits.status_code == 204


async def test_a_key_that_is_not_one_of_the_servers_is_not_saved(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    """A typo was answered "Key saved for this session.", and refused only at the next write."""
    unset = await client.post("/dashboard/key", json={"key": "alpha"}, headers=OWN)
    assert (unset.status_code, unset.json()["message"]) == (
        422,
        "key: this server has no API keys (API_KEYS is unset): none is needed",
    )
    assert "set-cookie" not in unset.headers
    await configure(API_KEYS="alpha, beta")
    for wrong in ("typo-key", "alph", "alpha,beta", "ALPHA"):
        refused = await client.post("/dashboard/key", json={"key": wrong}, headers=OWN)
        assert (refused.status_code, refused.json()["message"]) == (
            422,
            "key: not one of this server's API keys; check it against API_KEYS",
        ), wrong
        assert refused.json()["detail"][0]["loc"] == ["body", "key"]
        assert "set-cookie" not in refused.headers
    for right in ("beta", " alpha "):
        saved = await client.post("/dashboard/key", json={"key": right}, headers=OWN)
        assert (saved.status_code, saved.headers["set-cookie"]) == (
            204,
            f"pipeline_api_key={right.strip()}; HttpOnly; Path=/; SameSite=lax",
        )


async def test_the_cookie_authorises_writes_sent_by_the_services_own_pages(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    """The dashboard's script can no longer read the key to send it as X-API-Key: its writes
    carry the cookie, and their Origin says which page sent them."""
    await configure(API_KEYS="alpha")
    pipeline_id = await add_pipeline("p")
    await add_run(pipeline_id, Status.COMPLETED, {})
    cancel = f"/api/pipelines/{pipeline_id}/cancel"
    cookie = {"Cookie": "pipeline_api_key=alpha"}
    own_page = await client.post(cancel, headers={**cookie, **OWN})
    assert own_page.status_code == 409  # authorised: the run has just nothing to cancel
    referer = {**cookie, "Referer": f"http://test/pipelines/{pipeline_id}"}
    assert (await client.post(cancel, headers=referer)).status_code == 409
    assert (await client.post(cancel, headers=cookie)).status_code == 401  # no page said so
    other = await client.post(cancel, headers={**cookie, "Origin": "http://test:3000"})
    assert other.status_code == 403
    wrong = await client.post(cancel, headers={"Cookie": "pipeline_api_key=beta", **OWN})
    assert (wrong.status_code, wrong.json()["message"]) == (
        401,
        "the API key is not valid; check the key you send against API_KEYS",
    )


async def test_the_key_panel_says_whether_a_key_is_saved(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    await configure(API_KEYS="alpha")
    for headers, said in (
        ({}, "No key saved."),
        ({"Cookie": "pipeline_api_key=alpha"}, "A key is saved for this session."),
    ):
        page = parse((await client.get("/", headers=headers)).text)
        assert page.by_id("api-key-status").text == said
        assert page.by_id("api-key-hint").text == (
            "One of the server's API_KEYS. Kept in a session cookie of this browser (gone when it "
            "closes) that no script can read."
        )


async def test_saving_or_forgetting_the_key_expires_cookies_other_pages_set_for_the_domain(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    """A page of another port or subdomain set `pipeline_api_key` with Domain=<this host>: the
    browser sent it beside the server's, "Forget key" left it, and the dashboard was stuck."""
    await configure(API_KEYS="k")
    host = {"Host": "dash.pipelines.test", "Origin": "http://dash.pipelines.test"}
    for response in (
        await client.post("/dashboard/key", json={"key": "k"}, headers=host),
        await client.delete("/dashboard/key", headers=host),
    ):
        expired = [c for c in response.headers.get_list("set-cookie") if "Domain=" in c]
        assert [(c.split("; Domain=")[1].split(";")[0], "Max-Age=0" in c) for c in expired] == [
            ("dash.pipelines.test", True),
            ("pipelines.test", True),
        ]
    # an address has no domain cookies: nothing but the server's own is set
    saved = await client.post("/dashboard/key", json={"key": "k"}, headers=OWN)
    assert len(saved.headers.get_list("set-cookie")) == 1
