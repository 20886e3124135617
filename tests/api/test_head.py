"""HEAD is answered wherever GET is: the GET's status and headers, no body."""

import httpx


async def test_head_answers_as_get_would_without_the_body(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/pipelines", json={"name": "probe"})
    pipeline_id = created.json()["id"]
    for path in ("/health", "/api/pipelines", f"/api/pipelines/{pipeline_id}", "/"):
        got, head = await client.get(path), await client.head(path)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == str(len(got.content))
    missing = await client.head("/api/pipelines/999")
    assert (missing.status_code, missing.content) == (404, b"")
    # a method no route has is still refused
    assert (await client.put("/health")).status_code == 405
