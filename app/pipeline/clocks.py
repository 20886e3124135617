"""Which clock a moment was written by, and that clock's "now": the watchdog and the pool's health
compare each time only with the clock that wrote it, never one machine's clock with another's."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import utcnow

# an HTTP Date header counts whole seconds: an offset within this is no offset it can show
DATE_RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True)
class Clocks:
    """ "Now" on each clock that writes a run's times."""

    api: datetime  # a run's created_at: written by an API process
    database: datetime  # started_at, heartbeat_at and every status write: the database's clock
    prefect: datetime  # the timestamps of Prefect's states and worker heartbeats: its server's

    @classmethod
    def one(cls, now: datetime) -> "Clocks":
        """Every clock at `now`: one machine, or a judgement that does not tell them apart."""
        return cls(api=now, database=now, prefect=now)


async def database_now(session: AsyncSession) -> datetime:
    """The database's clock, which every process writing a run's times reads, on whichever
    machine it runs (PostgreSQL's clock_timestamp(): now, not when the transaction began).
    SQLite is a file on this machine: its clock is this one's."""
    if session.get_bind().dialect.name != "postgresql":
        return utcnow()
    now: datetime = (await session.execute(select(func.clock_timestamp()))).scalar_one()
    return now.astimezone(UTC)


def server_offset(response: httpx.Response, *, sent: datetime, received: datetime) -> timedelta:
    """How far the clock of the server that sent `response` is ahead of this one, from its Date
    header: zero within the header's one-second resolution, and when it has none."""
    try:
        stamped = parsedate_to_datetime(response.headers["date"])
    except (KeyError, TypeError, ValueError):
        return timedelta(0)
    # the header was written between `sent` and `received`, and truncated to its second
    offset = stamped + DATE_RESOLUTION / 2 - (sent + (received - sent) / 2)
    return timedelta(0) if abs(offset) <= DATE_RESOLUTION else offset
