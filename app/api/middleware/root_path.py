"""A service served under a path prefix by a proxy that strips it (`UVICORN_ROOT_PATH=/pipelines`,
or `uvicorn --root-path /pipelines`): uvicorn's `scope["path"]` then holds the prefix, as ASGI
says, and `scope["root_path"]` names it. Starlette's routing takes it off; what reads the path
before the router, and every link a page or a script writes, must do the same."""

from starlette.types import Scope


def root_path(scope: Scope) -> str:
    """The prefix the service is served under, without a trailing slash: `""` at the root."""
    return str(scope.get("root_path", "")).rstrip("/")


def route_path(scope: Scope) -> str:
    """The request's path within the service, as its routes are written: `/api/pipelines` for
    `/pipelines/api/pipelines` served under `/pipelines`."""
    path: str = scope["path"]
    root = root_path(scope)
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path
