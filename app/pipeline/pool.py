"""What Prefect says about the work pool, its workers and the deployment: for the readiness
check, `pipeline doctor` and the watchdog (which fails runs no worker is there to take)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventRelatedFilter,
)
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from app.config import get_settings
from app.pipeline.clocks import server_offset
from app.pipeline.orchestrator import PrefectUnavailableError, prefect_client, shown_api_url

STOPPED = "prefect.worker.stopped"
EVENTS_PAGE = 50  # the most events Prefect returns at once
# how far a worker's clock (an event's `occurred`) may be from the server's and this one's
CLOCK_SLACK = timedelta(minutes=10)


@dataclass(frozen=True)
class PoolHealth:
    """What Prefect says about the work pool and the deployment."""

    pool_exists: bool
    pool_paused: bool
    pool_concurrency_limit: int | None
    live_workers: list[str]
    deployment_exists: bool
    deployment_pool: str | None = None  # the pool the deployment sends its runs to
    # how far the Prefect server's clock is ahead of this process's (its answer's Date header)
    prefect_clock_offset: timedelta = timedelta(0)

    @property
    def takes_runs(self) -> bool:
        """A run can start: the pool is there, not paused, its limit not 0, a worker is live."""
        return (
            bool(self.live_workers)
            and self.pool_exists
            and not self.pool_paused
            and self.pool_concurrency_limit != 0
        )


class NotPrefectAPIError(PrefectUnavailableError):
    """PREFECT_API_URL answers, but not as a Prefect server's API (GET /health: `true`): there,
    every 404 would read as a pool and a deployment that are missing."""

    def __init__(self, answer: str) -> None:
        url = shown_api_url()
        self.detail = f"{url} is not a Prefect server's API: GET {url}/health answered {answer}"
        self.fix = (
            "PREFECT_API_URL must be the Prefect server's API address, ending in /api"
            + ("" if url.rstrip("/").endswith("/api") else f" (try {url.rstrip('/')}/api)")
            + ", in every process: API, worker and this one"
        )
        super().__init__(f"{self.detail}. {self.fix}")


def _judge_health(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise NotPrefectAPIError(f"{response.status_code}, not `true`")
    try:
        if response.json() is True:
            return
    except ValueError:
        pass
    raise NotPrefectAPIError(f"{response.text[:60]!r}, not `true`")


def _answer(exc: PrefectHTTPStatusError) -> httpx.Response:
    """A failed /health's answer; credentials refused (401, 403) and a server's own failure (5xx)
    go on to be reported as what they are."""
    if exc.response.status_code in (401, 403) or exc.response.status_code >= 500:
        raise exc
    return exc.response


async def require_prefect_api(client: PrefectClient) -> timedelta:
    """Raise NotPrefectAPIError unless the client's URL is a Prefect server's API; else how far
    the server's clock is ahead of this process's."""
    sent = datetime.now(UTC)
    try:
        response = await client.request("GET", "/health")
    except PrefectHTTPStatusError as exc:
        response = _answer(exc)
    _judge_health(response)
    return server_offset(response, sent=sent, received=datetime.now(UTC))


async def prefect_clock_offset() -> timedelta:
    """How far the Prefect server's clock is ahead of this process's, to a second."""
    async with prefect_client() as client:
        return await require_prefect_api(client)


def require_prefect_api_sync(client: SyncPrefectClient) -> None:
    """require_prefect_api, for deploy.py's synchronous client."""
    try:
        response = client.request("GET", "/health")
    except PrefectHTTPStatusError as exc:
        response = _answer(exc)
    _judge_health(response)


async def pool_health(*, worker_stale_after: timedelta = timedelta(seconds=90)) -> PoolHealth:
    """The pool, its live workers (a recent heartbeat, and not stopped since), and the
    deployment, in one look, once PREFECT_API_URL is known to be a Prefect server's API. A
    heartbeat's time is the server's, when it recorded it: its age is on the server's clock."""
    settings = get_settings()
    async with prefect_client() as client:
        offset = await require_prefect_api(client)
        try:
            pool = await client.read_work_pool(settings.work_pool_name)
        except ObjectNotFound:
            pool = None
        workers = await client.read_workers_for_work_pool(settings.work_pool_name) if pool else []
        try:
            deployment = await client.read_deployment_by_name(settings.deployment_name)
        except ObjectNotFound:
            deployment = None
        now = datetime.now(UTC) + offset  # the server's
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
        prefect_clock_offset=offset,
    )


async def _stopped_since(
    client: PrefectClient, pool_id: UUID, beating: dict[str, datetime], since: datetime
) -> set[str]:
    """The workers among `beating` that said they stopped (Prefect's `prefect.worker.stopped`
    event, sent as a worker shuts down) after their last heartbeat: Prefect counts a worker as
    online until its heartbeat is 90 s old, which kept a stopped worker live that long. A worker
    killed outright sends none; one started again under the same name beats again after it.
    Both moments are the server's: a heartbeat's time is when the server recorded it, and an
    event's `received` when it did (its `occurred` is the worker's own clock)."""
    found = EventFilter(
        event=EventNameFilter(name=[STOPPED]),
        related=EventRelatedFilter(id=[f"prefect.work-pool.{pool_id}"]),  # not a namesake's
        occurred=EventOccurredFilter(
            since=since - CLOCK_SLACK, until=datetime.now(UTC) + CLOCK_SLACK
        ),
    )
    try:
        page = await client.read_events(found, limit=EVENTS_PAGE)
    except PrefectHTTPStatusError:  # a server that keeps no events: the heartbeats alone
        return set()
    return {
        name
        for event in page.events
        if (name := event.resource.get("prefect.resource.name")) in beating
        and event.received >= beating[name]
    }
