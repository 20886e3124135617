"""What Prefect says about the work pool, its workers and the deployment: for the readiness
check, `pipeline doctor` and the watchdog (which fails runs no worker is there to take)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventRelatedFilter,
)
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from app.config import get_settings
from app.pipeline.orchestrator import prefect_client

STOPPED = "prefect.worker.stopped"
EVENTS_PAGE = 50  # the most events Prefect returns at once


@dataclass(frozen=True)
class PoolHealth:
    """What Prefect says about the work pool and the deployment."""

    pool_exists: bool
    pool_paused: bool
    pool_concurrency_limit: int | None
    live_workers: list[str]
    deployment_exists: bool
    deployment_pool: str | None = None  # the pool the deployment sends its runs to


async def pool_health(*, worker_stale_after: timedelta = timedelta(seconds=90)) -> PoolHealth:
    """The pool, its live workers (a recent heartbeat, and not stopped since), and the
    deployment, in one look."""
    settings = get_settings()
    async with prefect_client() as client:
        try:
            pool = await client.read_work_pool(settings.work_pool_name)
        except ObjectNotFound:
            pool = None
        workers = await client.read_workers_for_work_pool(settings.work_pool_name) if pool else []
        try:
            deployment = await client.read_deployment_by_name(settings.deployment_name)
        except ObjectNotFound:
            deployment = None
        now = datetime.now(UTC)
        beating = {
            worker.name: worker.last_heartbeat_time
            for worker in workers
            if worker.last_heartbeat_time is not None
            and now - worker.last_heartbeat_time < worker_stale_after
        }
        stopped = (
            await _stopped_since(client, pool.id, beating, now - worker_stale_after)
            if pool and beating
            else set()
        )
    live = [name for name in beating if name not in stopped]
    return PoolHealth(
        pool_exists=pool is not None,
        pool_paused=bool(pool and pool.is_paused),
        pool_concurrency_limit=pool.concurrency_limit if pool else None,
        live_workers=live,
        deployment_exists=deployment is not None,
        deployment_pool=deployment.work_pool_name if deployment else None,
    )


async def _stopped_since(
    client: PrefectClient, pool_id: UUID, beating: dict[str, datetime], since: datetime
) -> set[str]:
    """The workers among `beating` that said they stopped (Prefect's `prefect.worker.stopped`
    event, sent as a worker shuts down) after their last heartbeat: Prefect counts a worker as
    online until its heartbeat is 90 s old, which kept a stopped worker live that long. A worker
    killed outright sends none; one started again under the same name beats again after it."""
    found = EventFilter(
        event=EventNameFilter(name=[STOPPED]),
        related=EventRelatedFilter(id=[f"prefect.work-pool.{pool_id}"]),  # not a namesake's
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(minutes=1)),
    )
    try:
        page = await client.read_events(found, limit=EVENTS_PAGE)
    except PrefectHTTPStatusError:  # a server that keeps no events: the heartbeats alone
        return set()
    return {
        name
        for event in page.events
        if (name := event.resource.get("prefect.resource.name")) in beating
        and event.occurred >= beating[name]
    }
