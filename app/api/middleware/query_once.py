"""The query of an API route holds only the parameters it takes, each once: FastAPI ignored any
other (`?stauts=failed` listed every pipeline) and took the last of a repeated one
(`?status=failed&status=completed` listed the completed ones), saying nothing either way.

A name the route does not take, or given twice, is a 422 in the API's error shape naming each,
in the query's order. No API route takes a list in its query (tests/api/test_repeated_query.py
checks the OpenAPI document), so any name given twice is a mistake. A path no route answers, or
not with this method, keeps its 404 or 405: only a name given twice is refused there."""

from collections import Counter
from typing import Any

from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import MAX_PROBLEMS
from app.api.middleware.query_names import Route, not_taken, route_takes, routes_of
from app.api.middleware.root_path import route_path
from app.echoed import cut

EMPTY_NAME = "''"  # `?=1`: a parameter whose name is empty


def problems(scope: Scope, routes: list[Route]) -> list[tuple[str, str, str]]:
    """Each name of the query the route does not take, or that is given more than once, with
    what it is told and the problem's type (a name not taken is said once, however often it is
    given: the fix is to remove it)."""
    counts = Counter(name for name, _ in QueryParams(scope["query_string"]).multi_items())
    taken = route_takes(scope, routes)
    found = []
    for name, times in counts.items():
        if taken is not None and name not in taken:
            found.append((name, not_taken(name, taken), "unknown_query_parameter"))
        elif times > 1:
            found.append((name, f"given {times:,} times; give it once", "repeated_query_parameter"))
    return found


def refusal(found: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The 422's body: the first problems, then how many more, as a 422 of the routes' own."""
    detail: list[dict[str, Any]] = []
    said = []
    for name, message, kind in found[:MAX_PROBLEMS]:
        shown = cut(name)
        detail.append({"loc": ["query", shown], "msg": message, "type": kind})
        said.append(f"{shown or EMPTY_NAME}: {message}")
    if (more := len(found) - MAX_PROBLEMS) > 0:
        unlisted = f"and {more:,} more problem{'s' if more > 1 else ''}, not listed"
        detail.append({"loc": [], "msg": unlisted, "type": "more_problems"})
        said.append(unlisted)
    return {"message": "; ".join(said), "detail": detail}


class QueryOnce:
    """Pure ASGI middleware: a 422 in the API's error shape naming each parameter of the query
    the route does not take or that is given twice; a request without a query costs nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: list[Route] | None = None  # the app's, read at the first query

    def _routes(self, scope: Scope) -> list[Route]:
        if self.routes is None:
            self.routes = routes_of(scope["app"].router)
        return self.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["query_string"]
            and route_path(scope).startswith("/api/")
            and (found := problems(scope, self._routes(scope)))
        ):
            await JSONResponse(refusal(found), 422)(scope, receive, send)
            return
        await self.app(scope, receive, send)
