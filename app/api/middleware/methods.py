"""The methods a path allows, for a 405: Starlette's `Allow` named only those of the first route
whose path matched (`POST` on /api/pipelines, whose `GET` is another route's)."""

from starlette.requests import Request
from starlette.routing import Match, Mount
from starlette.types import Scope

from app.api.middleware.head import HeadAsGet

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed(request: Request) -> list[str]:
    """The methods some route of the app takes at the request's path, sorted; none for a path
    only a mount answers (a mount takes any method, and its 405 says its own)."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    found = {
        method
        for method in METHODS
        if any(route.matches(_probe(request.scope, method))[0] == Match.FULL for route in routes)
    }
    if "GET" in found and _answers_head(request):
        found.add("HEAD")
    return sorted(found)


def _probe(scope: Scope, method: str) -> Scope:
    """A scope of the request's path with another method, sharing no state with the request's."""
    return {
        "type": "http",
        "method": method,
        "path": scope["path"],
        "root_path": scope.get("root_path", ""),
        "headers": scope["headers"],
        "app": scope["app"],
    }


def _answers_head(request: Request) -> bool:
    """Whether HEAD is answered wherever GET is: head.py's middleware is installed."""
    return any(middleware.cls is HeadAsGet for middleware in request.app.user_middleware)
