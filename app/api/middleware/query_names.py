"""The query parameters a request's route takes, read from the route itself: its own and its
dependencies' (FastAPI's dependant), so a parameter added to a route is taken at once."""

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params, get_validation_alias
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import Scope


def query_names(dependant: Dependant) -> frozenset[str]:
    """The query names `dependant` and its sub-dependencies read (a query model's fields, where
    one is a dependency's whole query, as FastAPI reads them)."""
    names: set[str] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        flat = get_flat_params(Dependant(query_params=current.query_params))
        names.update(get_validation_alias(field) for field in flat)
        todo.extend(current.dependencies)
    return frozenset(names)


@dataclass(frozen=True)
class Route:
    """A route of the app as the router matches it, and the query names it takes."""

    methods: frozenset[str] | None  # None: any (a mount)
    matches: Callable[[Scope], tuple[Match, Scope]]  # as included, with its router's prefix
    takes: frozenset[str] | None  # None: not a route of FastAPI's, whose query is its own


def routes_of(router: Any) -> list[Route]:
    """The app's routes in the router's order (read once the app is built: its routes are set)."""
    found = []
    for route in iter_route_contexts(router.routes):
        methods = getattr(route, "methods", None)
        dependant = getattr(route, "dependant", None)
        takes = query_names(dependant) if isinstance(dependant, Dependant) else None
        found.append(Route(frozenset(methods) if methods else None, route.matches, takes))
    return found


def route_takes(scope: Scope, routes: list[Route]) -> frozenset[str] | None:
    """The query names the routes answering this request take; None when none answers it (a 404
    or a 405, the router's to say) or one that is not FastAPI's does. Two routes of one path and
    method (the JSON and the multipart create) take either's names."""
    taken: frozenset[str] | None = None
    for route in routes:
        if route.methods is not None and scope["method"] not in route.methods:
            continue
        if route.matches(scope)[0] != Match.FULL:
            continue
        if route.takes is None:
            return None
        taken = route.takes if taken is None else taken | route.takes
    return taken


def not_taken(name: str, taken: frozenset[str]) -> str:
    """What a request is told of a query parameter its route does not take."""
    if not taken:
        return "not a parameter of this route, which takes none; remove it"
    ordered = sorted(taken)
    listed = (
        f"only {ordered[0]}"
        if len(ordered) == 1
        else f"{', '.join(ordered[:-1])} and {ordered[-1]}"
    )
    close = difflib.get_close_matches(name, ordered, n=1)
    meant = f" (did you mean {close[0]}?)" if close else ""
    return f"not a parameter of this route{meant}; it takes {listed}"
