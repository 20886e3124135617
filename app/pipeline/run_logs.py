"""A flow run's log lines, as its process and its task runs sent them to Prefect: what the API's
logs endpoint, the dashboard's log tail and `pipeline logs` show."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.sorting import LogSort

from app.config import get_settings
from app.pipeline.orchestrator import PrefectUnavailableError, prefect_client, shown_api_url


@dataclass(frozen=True)
class RunLog:
    """One log line that a flow run, or one of its task runs, sent to Prefect."""

    id: str
    timestamp: datetime
    level: str
    logger: str
    message: str
    task_run_id: str | None


async def read_run_logs(
    flow_run_id: str, *, limit: int, tail: bool = False, offset: int = 0
) -> list[RunLog]:
    """The first (or with `tail`, the last) `limit` log lines of a flow run and its task runs
    after `offset` of them, oldest first."""
    settings = get_settings()
    async with prefect_client() as client:
        try:
            # one attempt's time in all: Prefect's client would retry a server that does not
            # answer for ~2 minutes, and a dashboard polls its logs every second
            async with asyncio.timeout(settings.prefect_timeout_seconds):
                logs = await client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)])),
                    limit=limit,
                    offset=offset,
                    sort=LogSort.TIMESTAMP_DESC if tail else LogSort.TIMESTAMP_ASC,
                )
        except TimeoutError:
            raise PrefectUnavailableError(
                f"Prefect API at {shown_api_url()} did not answer within "
                f"{settings.prefect_timeout_seconds:g} s (PIPELINE_PREFECT_TIMEOUT_SECONDS); "
                "check the Prefect server's log and its database."
            ) from None
    if tail:
        logs.reverse()
    return [
        RunLog(
            id=str(log.id),
            timestamp=log.timestamp,
            level=logging.getLevelName(log.level),
            logger=log.name,
            message=log.message,
            task_run_id=str(log.task_run_id) if log.task_run_id else None,
        )
        for log in logs
    ]
