"""A database that does not answer for a while (a restart, a failover): which errors say so, and
how a flow run's writes wait it out, within PIPELINE_DATABASE_RETRY_SECONDS, instead of failing
the run. Any other error is raised at once: retrying it would only fail the same way later."""

import asyncio
import errno
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.config import get_settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_DELAY = 0.25  # seconds before the first attempt again; doubled each time, up to MAX_DELAY
MAX_DELAY = 4.0
# PostgreSQL: a connection exception (class 08), and the server shutting down or starting up
_SQLSTATES = ("08", "57P01", "57P02", "57P03")
_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}


# True in a flow run (set by the flow): its writes wait out an outage. The API's fail at once,
# a 503 that the caller can retry, rather than hold a request for a minute.
patient: ContextVar[bool] = ContextVar("patient", default=False)


class DatabaseUnreachableError(ConnectionError):
    """The database did not answer within PIPELINE_DATABASE_RETRY_SECONDS."""


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached (rather than refused the request):
    it, or an error it was raised from (SQLAlchemy's wrapper's driver error and its cause)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if _says_unreachable(error):
            return True
        todo += [getattr(error, "orig", None), error.__cause__]
    return False


def _says_unreachable(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, PoolTimeoutError):  # no connection of the pool came free or got made
        return True
    if isinstance(error, ConnectionError | TimeoutError | asyncpg.ConnectionDoesNotExistError):
        return True
    if isinstance(error, OSError) and not isinstance(error, asyncpg.PostgresError):
        # asyncio's own, trying each address of a name: "Multiple exceptions: [Errno 111] …"
        return error.errno in _ERRNOS or (
            error.errno is None and "Connect call failed" in str(error)
        )
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_SQLSTATES):
        return True
    # SQLite's writer held the lock past busy_timeout (a long checkpoint, a stuck writer)
    return isinstance(error, sqlite3.OperationalError) and "database is locked" in str(error)


class Outage:
    """This process's view of the database's reachability: one warning when it goes, one line
    when it comes back, however many writes wait meanwhile."""

    def __init__(self) -> None:
        self.since: float | None = None  # time.monotonic() of the first failure

    def failed(self, what: str, exc: BaseException, budget: float) -> None:
        if self.since is None:
            self.since = time.monotonic()
            logger.warning(
                "the database is unreachable (%s: %s); %s and every other write wait for it, "
                "up to %g s each (PIPELINE_DATABASE_RETRY_SECONDS)",
                type(exc).__name__,
                exc,
                what,
                budget,
            )

    def reached(self) -> None:
        if self.since is not None:
            logger.warning(
                "the database is reachable again, after %.1f s", time.monotonic() - self.since
            )
            self.since = None


outage = Outage()


async def through_outage(
    operation: Callable[[], Awaitable[T]],
    *,
    budget: float,
    failed: Callable[[BaseException], None],
) -> T:
    """`operation()`, run again after 0.25, 0.5, 1, 2, 4, 4 … s while it fails because the
    database is unreachable (`failed(error)` told of each such failure), for up to `budget`
    seconds; then that failure raised. Any other error is raised at once."""
    deadline = time.monotonic() + budget
    delay = FIRST_DELAY
    while True:
        try:
            return await operation()
        except Exception as exc:
            left = deadline - time.monotonic()
            if not is_transient(exc) or left <= 0:
                raise
            failed(exc)
            await asyncio.sleep(min(delay, left))
            delay = min(2 * delay, MAX_DELAY)


async def retried(operation: Callable[[], Awaitable[T]], *, what: str) -> T:
    """`operation()`, run again with a bounded backoff while it fails because the database is
    unreachable, for up to PIPELINE_DATABASE_RETRY_SECONDS; then DatabaseUnreachableError,
    from the last error. Each attempt is a transaction of its own, begun afresh. Only in a flow
    run (`patient`); elsewhere `operation()` once."""
    if not patient.get():
        return await operation()
    budget = get_settings().database_retry_seconds
    try:
        result = await through_outage(
            operation, budget=budget, failed=lambda exc: outage.failed(what, exc, budget)
        )
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise DatabaseUnreachableError(
            f"the database was unreachable for {budget:g} s (PIPELINE_DATABASE_RETRY_"
            f"SECONDS) while this run's process tried {what}: {type(exc).__name__}: {exc}"
        ) from exc
    outage.reached()
    return result
