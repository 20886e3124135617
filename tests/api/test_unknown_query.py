"""A query parameter an API route does not take is a 422 naming it and the ones the route takes:
`GET /api/pipelines?stauts=failed` listed every pipeline, as if nothing had been asked. Refused
before any route runs: no database here (tests/api/test_repeated_query.py checks on both that
the parameters given are taken)."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from httpx import ASGITransport
from pydantic import BaseModel, Field

from app.api.middleware.query_names import routes_of
from app.api.middleware.query_once import QueryOnce, problems
from app.main import create_app

PIPELINES = "page, page_size and status"
NONE = "not a parameter of this route, which takes none; remove it"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=ASGITransport(app=create_app()), base_url="http://test"
    ) as client:
        yield client


def refused(*problems: tuple[str, str, str]) -> dict[str, Any]:
    """The 422 body: each (name, what it is told, problem type), in that order."""
    return {
        "message": "; ".join(f"{name}: {msg}" for name, msg, _ in problems),
        "detail": [
            {"loc": ["query", name], "msg": msg, "type": kind} for name, msg, kind in problems
        ],
    }


def unknown(name: str, msg: str) -> tuple[str, str, str]:
    return name, msg, "unknown_query_parameter"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        (
            "GET",
            "/api/pipelines?stauts=failed",
            refused(
                unknown(
                    "stauts",
                    f"not a parameter of this route (did you mean status?); it takes {PIPELINES}",
                )
            ),
        ),
        ("GET", "/api/pipelines/1?verbose=true", refused(unknown("verbose", NONE))),
        (
            "GET",
            "/api/pipelines/1/runs/2/output?fmt=csv",
            refused(
                unknown(
                    "fmt",
                    "not a parameter of this route (did you mean format?); it takes only format",
                )
            ),
        ),
        (
            "GET",
            "/api/pipelines/1/logs?lines=5&tail=true",
            refused(
                unknown(
                    "lines",
                    "not a parameter of this route; it takes limit, offset, run_id and tail",
                )
            ),
        ),
        ("GET", "/api/schedules?pipeline_id=1", refused(unknown("pipeline_id", NONE))),
        ("POST", "/api/pipelines?trigger=true", refused(unknown("trigger", NONE))),
        ("POST", "/api/pipelines/1/trigger?record_count=5", refused(unknown("record_count", NONE))),
        ("DELETE", "/api/pipelines/1?force=true", refused(unknown("force", NONE))),
        ("PUT", "/api/pipelines/1/schedule?cron=0+6+*+*+*", refused(unknown("cron", NONE))),
    ],
)
async def test_a_parameter_the_route_does_not_take_is_refused(
    api: httpx.AsyncClient, method: str, url: str, body: dict[str, Any]
) -> None:
    response = await api.request(method, url)
    assert (response.status_code, response.json()) == (422, body)


async def test_the_multipart_create_takes_no_query_either(api: httpx.AsyncClient) -> None:
    """The upload shares its path and method with the JSON create: either's names count."""
    response = await api.post(
        "/api/pipelines?format=csv", data={"name": "x"}, files={"file": ("a.csv", b"id\n1\n")}
    )
    assert (response.status_code, response.json()) == (422, refused(unknown("format", NONE)))


async def test_a_head_request_is_refused_without_a_body(api: httpx.AsyncClient) -> None:
    """Answered as its GET (app/api/middleware/head.py), or by the download's own HEAD route."""
    for url in ("/api/pipelines?stauts=failed", "/api/pipelines/1/runs/2/output?fmt=csv"):
        response = await api.head(url)
        assert (response.status_code, response.content) == (422, b""), url


async def test_unknown_and_repeated_parameters_are_said_together_in_the_query_s_order(
    api: httpx.AsyncClient,
) -> None:
    """A name not taken is said once, however often it is given: the fix is to remove it."""
    response = await api.get("/api/pipelines?page=1&stauts=x&page=2&sort=name&stauts=y")
    assert (response.status_code, response.json()) == (
        422,
        refused(
            ("page", "given 2 times; give it once", "repeated_query_parameter"),
            unknown(
                "stauts",
                f"not a parameter of this route (did you mean status?); it takes {PIPELINES}",
            ),
            unknown("sort", f"not a parameter of this route; it takes {PIPELINES}"),
        ),
    )


async def test_a_long_or_empty_name_is_said_as_every_refusal_says_one(
    api: httpx.AsyncClient,
) -> None:
    long = await api.get(f"/api/pipelines/1?{'k' * 300}=1")
    assert (long.status_code, long.json()) == (422, refused(unknown("k" * 63 + "…", NONE)))
    empty = await api.get("/api/pipelines/1?=1")
    assert (empty.status_code, empty.json()) == (
        422,
        {
            "message": f"'': {NONE}",
            "detail": [{"loc": ["query", ""], "msg": NONE, "type": "unknown_query_parameter"}],
        },
    )


async def test_a_path_no_route_answers_keeps_its_404_or_405(api: httpx.AsyncClient) -> None:
    """Which parameters a route takes is said only of a route that answers the request."""
    missing = await api.get("/api/pipeline?stauts=failed")
    assert (missing.status_code, missing.json()) == (
        404,
        {"message": "Not Found", "detail": "Not Found"},
    )
    patched = await api.patch("/api/pipelines/1?force=true")
    message = "PATCH is not allowed on this path; it allows DELETE, GET, HEAD"
    assert (patched.status_code, patched.json()) == (405, {"message": message, "detail": message})
    # a name given twice is refused there, as before
    twice = await api.get("/api/pipeline?x=1&x=2")
    assert (twice.status_code, twice.json()) == (
        422,
        refused(("x", "given 2 times; give it once", "repeated_query_parameter")),
    )
    # and a path outside the API is not checked at all
    assert (await api.get("/health?probe=1")).status_code == 200


def test_every_api_route_takes_each_query_parameter_it_declares() -> None:
    """The OpenAPI document's query parameters of every /api/ operation pass, and of its HEAD
    (the downloads' own HEAD routes); one it does not declare is refused (the check is not
    vacuous)."""
    app = create_app()
    routes = routes_of(app.router)

    def refused_names(method: str, url: str, query: str) -> str:
        scope = {"type": "http", "method": method, "path": url, "query_string": query.encode()}
        return ",".join(name for name, _, _ in problems({**scope, "app": app}, routes))

    checked, heads = {}, {}
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path.replace("{pipeline_id}", "1").replace("{run_id}", "2")
        for method, operation in operations.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            declared = "&".join(f"{name}=1" for name in names)
            checked[f"{method.upper()} {path}"] = (
                refused_names(method.upper(), url, declared),
                refused_names(method.upper(), url, "zz_undeclared=1"),
            )
            if method == "get":
                heads[path] = refused_names("HEAD", url, declared)
    assert len(checked) == 20
    assert checked == dict.fromkeys(checked, ("", "zz_undeclared"))
    assert heads == dict.fromkeys(heads, "")


class Window(BaseModel):
    since: str | None = None
    until: str | None = Field(None, alias="to")


def paging(page: int = 1, per_page: Annotated[int, Query(alias="per-page")] = 20) -> int:
    return page * per_page


def window(window: Annotated[Window, Query()]) -> Window:
    return window


async def test_the_names_are_the_route_s_own_and_its_dependencies() -> None:
    """Read from the route's dependant, sub-dependencies and a query model included: a
    parameter added to a route is taken with no list to keep."""
    router = APIRouter(prefix="/api/things", dependencies=[Depends(window)])

    @router.get("")
    def things(pages: Annotated[int, Depends(paging)], sort: str = "name") -> dict[str, str]:
        return {"sort": sort}

    app = FastAPI()
    app.include_router(router)
    app.add_middleware(QueryOnce)
    async with httpx.AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        taken = await c.get("/api/things?page=2&per-page=5&sort=id&since=a&to=b")
        refusal = await c.get("/api/things?per_page=5&until=b")
    assert (taken.status_code, taken.json()) == (200, {"sort": "id"})
    listed = "page, per-page, since, sort and to"
    assert (refusal.status_code, refusal.json()) == (
        422,
        refused(
            unknown(
                "per_page",
                f"not a parameter of this route (did you mean per-page?); it takes {listed}",
            ),
            unknown("until", f"not a parameter of this route; it takes {listed}"),
        ),
    )
