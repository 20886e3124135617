"""How long one API request may wait on Prefect in all: its calls to Prefect, retries and back-off
included, end within PIPELINE_PREFECT_REQUEST_SECONDS of its first one, so a Prefect server that
accepts connections and never answers gets a 503 naming it well before the client gives up (the
CLI waits 30 s for a read). Prefect's client alone retried a hung server for ~2 min."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import get_settings


@dataclass
class _Budget:
    seconds: float
    deadline: float | None = None  # the event loop's time; set by the request's first call


_budget: ContextVar[_Budget | None] = ContextVar("prefect_budget", default=None)


class PrefectBudget:
    """Gives each HTTP request its own budget of time on Prefect. Background services (the
    watchdog) have none: nobody waits for their answer, and Prefect's client retries as it does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with as_a_request():
            await self.app(scope, receive, send)


@contextmanager
def as_a_request() -> Iterator[None]:
    """The block's calls to Prefect bounded as an HTTP request's are: `make doctor`, a terminal's
    GET /ready, answers in as long (it waited ~2 min on a hung server)."""
    token = _budget.set(_Budget(get_settings().prefect_request_seconds))
    try:
        yield
    finally:
        _budget.reset(token)


class BudgetSpentError(Exception):
    """The request's time on Prefect ran out: the block was cut off."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"{seconds:g} s")
        self.seconds = seconds


@asynccontextmanager
async def within_budget() -> AsyncIterator[None]:
    """The block is cut off (BudgetSpentError) when the request's budget on Prefect has run out,
    counted from its first call; it runs unbounded outside a request."""
    budget = _budget.get()
    if budget is None:
        yield
        return
    if budget.deadline is None:
        budget.deadline = asyncio.get_running_loop().time() + budget.seconds
    try:
        async with asyncio.timeout_at(budget.deadline) as timeout:
            yield
    except TimeoutError:
        if not timeout.expired():  # another timeout's, inside the block
            raise
        raise BudgetSpentError(budget.seconds) from None


@contextmanager
def budget_of_its_own() -> Iterator[None]:
    """The block's calls to Prefect get a budget of their own, as long as a request's: what puts
    back or removes what the request changed in Prefect (a schedule a failed delete removed, one
    set for a pipeline deleted meanwhile) is not cut off because the request's ran out first."""
    if _budget.get() is None:  # not in a request: unbounded as it is
        yield
        return
    token = _budget.set(_Budget(get_settings().prefect_request_seconds))
    try:
        yield
    finally:
        _budget.reset(token)
