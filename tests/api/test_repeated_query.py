"""A query parameter given twice on an API route is a 422 naming it (SQLite and PostgreSQL):
`?status=failed&status=completed` listed the completed pipelines and `?page=1&page=2` page 2,
saying nothing of the other value."""

from typing import Any

import httpx

from app.main import app
from tests.support.rows import add_pipeline


def refused(*names: tuple[str, int]) -> dict[str, Any]:
    """The 422 body naming each parameter given more than once, and how many times."""
    problems = [
        {
            "loc": ["query", name],
            "msg": f"given {times} times; give it once",
            "type": "repeated_query_parameter",
        }
        for name, times in names
    ]
    return {
        "message": "; ".join(f"{p['loc'][1]}: {p['msg']}" for p in problems),
        "detail": problems,
    }


async def test_a_repeated_parameter_is_refused_on_every_api_route(
    client: httpx.AsyncClient,
) -> None:
    pipeline_id = await add_pipeline("p")
    cases = {
        "/api/pipelines?status=failed&status=completed": refused(("status", 2)),
        "/api/pipelines?page=1&page=2": refused(("page", 2)),
        "/api/pipelines?page=1&page_size=5&page=2&page_size=6&page=3": refused(
            ("page", 3), ("page_size", 2)
        ),
        "/api/pipelines?page=1&page=1": refused(("page", 2)),  # the same value twice too
        "/api/pipelines?st%61tus=failed&status=failed": refused(("status", 2)),  # as decoded
        f"/api/pipelines/{pipeline_id}/runs?page_size=1&page_size=100": refused(("page_size", 2)),
        f"/api/pipelines/{pipeline_id}/logs?tail=true&tail=false": refused(("tail", 2)),
        f"/api/pipelines/{pipeline_id}/runs/1/output?format=csv&format=jsonl": refused(
            ("format", 2)
        ),
    }
    for url, body in cases.items():
        response = await client.get(url)
        assert (response.status_code, response.json()) == (422, body), url
    head = await client.head("/api/pipelines?page=1&page=2")
    assert (head.status_code, head.content) == (422, b"")


async def test_many_problems_are_listed_as_the_first_20(client: httpx.AsyncClient) -> None:
    """Names /api/pipelines does not take, each given twice: each said once, as not taken
    (tests/api/test_unknown_query.py), the first 20 of them."""
    query = "&".join(f"p{i}=1&p{i}=2" for i in range(23))
    response = await client.get(f"/api/pipelines?{query}")
    body = response.json()
    assert (response.status_code, len(body["detail"])) == (422, 21)
    assert body["detail"][-1] == {
        "loc": [],
        "msg": "and 3 more problems, not listed",
        "type": "more_problems",
    }
    assert body["message"] == (
        "; ".join(
            f"p{i}: not a parameter of this route; it takes page, page_size and status"
            for i in range(20)
        )
        + "; and 3 more problems, not listed"
    )


async def test_parameters_given_once_are_taken(client: httpx.AsyncClient) -> None:
    for number in range(3):
        await add_pipeline(f"p{number}", minutes=number)
    response = await client.get("/api/pipelines?page=2&page_size=2&status=created")
    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == ["p0"]
    # the dashboard's pages are not API routes: a page, not a 422, says what was given twice
    # (tests/api/test_dashboard_address.py)
    assert (await client.get("/?page=1&page=1")).status_code == 200


def test_no_api_route_takes_a_list_in_its_query() -> None:
    """QueryOnce refuses any name given twice: a route taking `?tag=a&tag=b` would need it
    to let that name through."""
    arrays = [
        f"{method.upper()} {path}: {parameter['name']}"
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and "array" in str(parameter["schema"])
    ]
    assert arrays == []
