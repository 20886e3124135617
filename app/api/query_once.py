"""A query parameter given twice on an API route (`?status=failed&status=completed`) is refused:
FastAPI took the last one and said nothing. No API route takes a list in its query (tests/api/
test_repeated_query.py checks the OpenAPI document), so any name given twice is a mistake."""

from collections import Counter

from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import MAX_PROBLEMS


def repeated(query_string: bytes) -> list[tuple[str, int]]:
    """Each name the query gives more than once, with how many times, in the query's order."""
    counts = Counter(name for name, _ in QueryParams(query_string).multi_items())
    return [(name, times) for name, times in counts.items() if times > 1]


class QueryOnce:
    """Pure ASGI middleware: a 422 in the API's error shape naming each repeated parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith("/api/")
            and b"&" in scope["query_string"]  # a query of one parameter repeats none
            and (names := repeated(scope["query_string"]))
        ):
            problems = [
                {
                    "loc": ["query", name],
                    "msg": f"given {times:,} times; give it once",
                    "type": "repeated_query_parameter",
                }
                for name, times in names[:MAX_PROBLEMS]
            ]
            said = [f"{p['loc'][1]}: {p['msg']}" for p in problems]
            if (more := len(names) - MAX_PROBLEMS) > 0:  # as a 422 of the routes' own says it
                unlisted = f"and {more:,} more problem{'s' if more > 1 else ''}, not listed"
                problems.append({"loc": [], "msg": unlisted, "type": "more_problems"})
                said.append(unlisted)
            message = "; ".join(said)
            await JSONResponse({"message": message, "detail": problems}, 422)(scope, receive, send)
            return
        await self.app(scope, receive, send)
