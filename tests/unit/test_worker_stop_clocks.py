"""A worker's stop event against its last heartbeat: both on the Prefect server's clock.

The heartbeat time is the server's (it stamps each heartbeat as it records it); the event's
`occurred` is the worker's own clock, `received` the server's. Comparing `occurred` with the
heartbeat compared two machines' clocks: a worker a few seconds behind the server stayed live
after it said it stopped, and a restarted namesake of a worker ahead of it was taken for stopped.
"""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

from prefect.events.filters import EventFilter
from prefect.events.schemas.events import ReceivedEvent

from app.pipeline import pool

POOL_ID = UUID("5d3c1c7e-8f0a-4a57-9a57-3f1d5e8b2c10")
SERVER_NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _stopped(worker: str, *, occurred: datetime, received: datetime) -> ReceivedEvent:
    return ReceivedEvent(
        id=uuid4(),
        event=pool.STOPPED,
        occurred=occurred,
        received=received,
        resource={"prefect.resource.id": f"prefect.worker.process.{worker}"}
        | {"prefect.resource.name": worker},
        related=[
            {
                "prefect.resource.id": f"prefect.work-pool.{POOL_ID}",
                "prefect.resource.role": "work-pool",
            }
        ],
    )


class _Server:
    """Prefect's events endpoint: the events it was given, as it returns them."""

    def __init__(self, events: list[ReceivedEvent]) -> None:
        self.events = events
        self.filters: list[EventFilter] = []

    async def read_events(self, filter: EventFilter, limit: int) -> Any:
        self.filters.append(filter)
        return SimpleNamespace(events=self.events)


async def test_a_stop_is_judged_by_when_the_server_received_it() -> None:
    beating = {
        # beat 2 s before it stopped; its clock is 5 s behind the server's
        "behind": SERVER_NOW - timedelta(seconds=2),
        # stopped at SERVER_NOW - 10 s, then started again under the same name and beat at
        # SERVER_NOW - 3 s; the old instance's clock was 20 s ahead of the server's
        "restarted": SERVER_NOW - timedelta(seconds=3),
    }
    server = _Server(
        [
            _stopped("behind", occurred=SERVER_NOW - timedelta(seconds=5), received=SERVER_NOW),
            _stopped(
                "restarted",
                occurred=SERVER_NOW + timedelta(seconds=10),
                received=SERVER_NOW - timedelta(seconds=10),
            ),
        ]
    )
    since = SERVER_NOW - timedelta(seconds=90)

    stopped = await pool._stopped_since(server, POOL_ID, beating, since)  # type: ignore[arg-type]

    assert stopped == {"behind"}
    # the events are looked for on the workers' clocks: with room for theirs to differ
    (looked,) = server.filters
    assert looked.occurred.since == since - pool.CLOCK_SLACK
