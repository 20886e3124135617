"""Which errors say the database is unreachable, and how a flow run's write waits it out: retried
within PIPELINE_DATABASE_RETRY_SECONDS, logged once per outage, any other error raised at once."""

import logging
import sqlite3
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, NoResultFound, OperationalError

from app.pipeline import transient
from app.pipeline.claim import RunCancelledError
from app.pipeline.transient import DatabaseUnreachableError, is_transient, retried
from tests.conftest import SetSetting


def _wrapped(error: Exception, *, invalidated: bool = False) -> DBAPIError:
    """As SQLAlchemy raises a driver's error: its wrapper, the driver's error as `orig`."""
    wrapper = OperationalError("SELECT 1", None, error, connection_invalidated=invalidated)
    wrapper.__cause__ = error
    return wrapper


def test_connection_failures_and_server_restarts_are_transient() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    assert [
        is_transient(error)
        for error in (
            refused,
            ConnectionResetError(104, "Connection reset by peer"),
            OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0)"),
            asyncpg.CannotConnectNowError("the database system is starting up"),
            asyncpg.AdminShutdownError("terminating connection due to administrator command"),
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
            _wrapped(Exception("anything"), invalidated=True),
            _wrapped(refused),
            _wrapped(sqlite3.OperationalError("database is locked")),
        )
    ] == [True] * 9


def test_refusals_and_bugs_are_not_transient() -> None:
    assert [
        is_transient(error)
        for error in (
            IntegrityError("INSERT", None, Exception("duplicate key value")),
            NoResultFound("No row was found when one was required"),
            RunCancelledError("run 3 was cancelled before its flow run started"),
            asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
            _wrapped(sqlite3.OperationalError("no such table: pipeline_runs")),
            FileNotFoundError(2, "No such file or directory"),
            ValueError("bad"),
        )
    ] == [False] * 7


class Flaky:
    """An operation that fails with `errors` first, then answers "written"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "written"


@pytest.fixture
def patient() -> Iterator[None]:
    """As in a flow run: its writes wait out an outage."""
    token = transient.patient.set(True)
    yield
    transient.patient.reset(token)


@pytest.mark.usefixtures("patient")
async def test_a_write_waits_out_an_outage_and_logs_it_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transient, "outage", transient.Outage())  # none under way
    caplog.set_level(logging.WARNING, logger="app.pipeline.transient")
    write = Flaky(
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        ConnectionResetError(104, "Connection reset by peer"),
    )
    assert await retried(write, what="run 4's generate status completed") == "written"
    assert write.calls == 4
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0] == (
        "the database is unreachable (ConnectionRefusedError: [Errno 111] Connect call failed); "
        "run 4's generate status completed and every other write wait for it, up to 60 s each "
        "(PIPELINE_DATABASE_RETRY_SECONDS)"
    )
    assert lines[1].startswith("the database is reachable again, after ")


@pytest.mark.usefixtures("patient")
async def test_any_other_error_is_raised_at_once() -> None:
    write = Flaky(NoResultFound("No row was found when one was required"))
    with pytest.raises(NoResultFound):
        await retried(write, what="run 4's heartbeat")
    assert write.calls == 1


@pytest.mark.usefixtures("patient")
async def test_an_outage_longer_than_the_setting_fails_the_write_naming_it(
    setting: SetSetting,
) -> None:
    setting("PIPELINE_DATABASE_RETRY_SECONDS", "0.3")
    write = Flaky(*[ConnectionRefusedError(111, "Connect call failed")] * 100)
    with pytest.raises(DatabaseUnreachableError) as raised:
        await retried(write, what="run 4's heartbeat")
    assert str(raised.value) == (
        "the database was unreachable for 0.3 s (PIPELINE_DATABASE_RETRY_SECONDS) while this "
        "run's process tried run 4's heartbeat: ConnectionRefusedError: [Errno 111] Connect "
        "call failed"
    )
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


async def test_outside_a_flow_run_nothing_waits() -> None:
    """The API answers 503 at once (the caller may retry) instead of holding a request."""
    write = Flaky(ConnectionRefusedError(111, "Connect call failed"))
    with pytest.raises(ConnectionRefusedError):
        await retried(write, what="run 4's run status failed")
    assert write.calls == 1
