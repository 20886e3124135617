"""A flow run's log lines, as its process and its task runs sent them to Prefect: what the API's
logs endpoint, the dashboard's log tail and `pipeline logs` show.

A cancelled run's lines end with one of the service's own, saying it was cancelled and by what.
Prefect 3.8.8 ends them otherwise: its engine, stopped by the cancel's SIGTERM before its worker
sets Cancelled, logs `Finished in state Running()`; its worker then loads the flow again to look
for `on_cancellation` hooks, and that load's deployment pull steps log as the run's own lines
(`Running 1 deployment pull step(s)` …), as if it started again. Those lines, from the engine's
last one after the cancel on, are left out of a cancelled run's."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp
from prefect.client.schemas.objects import Log
from prefect.client.schemas.sorting import LogSort

from app.config import get_settings
from app.models import utcnow
from app.pipeline.orchestrator import PrefectUnavailableError, prefect_client, shown_api_url

ENGINE_LOGGER = "prefect.flow_runs"  # the flow run's own logger: its engine's lines, and the load's
ENGINE_END = "Finished in state "
ENDING_LINES = 50  # where a cancelled run's engine's last line is looked for, from the end
# a cancelled run whose engine's last line has not come this long after the cancel has none
# coming (a cancel before its process started): its line is shown without it
ENGINE_END_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class RunLog:
    """One log line that a flow run, or one of its task runs, sent to Prefect."""

    id: str
    timestamp: datetime
    level: str
    logger: str
    message: str
    task_run_id: str | None


@dataclass(frozen=True)
class Cancelled:
    """A cancelled run, as the service's row says: its id, why (`error`) and when."""

    run_id: int
    reason: str | None
    at: datetime | None


Read = Callable[..., Awaitable[list[RunLog]]]


async def read_run_logs(
    flow_run_id: str,
    *,
    limit: int,
    tail: bool = False,
    offset: int = 0,
    cancelled: Cancelled | None = None,
) -> list[RunLog]:
    """The first (or with `tail`, the last) `limit` log lines of a flow run and its task runs
    after `offset` of them, oldest first; a `cancelled` run's end with the line saying so."""
    settings = get_settings()
    async with prefect_client() as client:

        async def read(
            limit: int, offset: int, *, tail: bool, before: datetime | None = None
        ) -> list[RunLog]:
            log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)]))
            if before is not None:
                log_filter.timestamp = LogFilterTimestamp(before_=before)
            logs = await client.read_logs(
                log_filter=log_filter,
                limit=limit,
                offset=offset,
                sort=LogSort.TIMESTAMP_DESC if tail else LogSort.TIMESTAMP_ASC,
            )
            return [_run_log(log) for log in reversed(logs)] if tail else list(map(_run_log, logs))

        try:
            # one attempt's time in all: Prefect's client would retry a server that does not
            # answer for ~2 minutes, and a dashboard polls its logs every second
            async with asyncio.timeout(settings.prefect_timeout_seconds):
                if cancelled is None:
                    return await read(limit, offset, tail=tail)
                return await _cancelled_lines(read, cancelled, limit, offset, tail=tail)
        except TimeoutError:
            raise PrefectUnavailableError(
                f"Prefect API at {shown_api_url()} did not answer within "
                f"{settings.prefect_timeout_seconds:g} s (PIPELINE_PREFECT_TIMEOUT_SECONDS); "
                "check the Prefect server's log and its database."
            ) from None


async def _cancelled_lines(
    read: Read, cancelled: Cancelled, limit: int, offset: int, *, tail: bool
) -> list[RunLog]:
    """A cancelled run's lines up to its engine's last one, then the service's line: paged as
    one sequence, the cut made by Prefect's own filter (its lines before that time)."""
    ending = await read(ENDING_LINES, 0, tail=True)
    engine_end = _engine_end(ending, cancelled.at)
    waited = cancelled.at is None or utcnow() - cancelled.at >= ENGINE_END_GRACE
    if engine_end is None and not waited:  # its process may still be stopping
        return await read(limit, offset, tail=tail)
    before = engine_end.timestamp - timedelta(microseconds=1) if engine_end else None
    shown = [line for line in ending if before is None or line.timestamp <= before]
    if not shown and before is not None and len(ending) == ENDING_LINES:  # cut above the window
        shown = await read(1, 0, tail=True, before=before)
    end = cancelled_line(cancelled, engine_end=engine_end, last=shown[-1] if shown else None)
    if tail:
        if offset > 0:
            return await read(limit, offset - 1, tail=True, before=before)
        earlier = await read(limit - 1, 0, tail=True, before=before) if limit > 1 else []
        return [*earlier, end]
    page = await read(limit, offset, tail=False, before=before)
    if len(page) == limit:
        return page
    # short: the page reached the end, unless it began past it (the line before it is not there)
    if page or offset == 0 or await read(1, offset - 1, tail=False, before=before):
        return [*page, end]
    return []


def _engine_end(ending: list[RunLog], cancelled_at: datetime | None) -> RunLog | None:
    """The engine's last line after the cancel. An end logged before it is not the cancel's (an
    earlier attempt's, from a process that ran the flow run before; a `Completed()` the cancel
    raced): the lines after it are still the run's."""
    return next(
        (
            line
            for line in reversed(ending)
            if line.logger == ENGINE_LOGGER
            and line.task_run_id is None
            and line.message.startswith(ENGINE_END)
            and (cancelled_at is None or line.timestamp >= cancelled_at)
        ),
        None,
    )


def cancelled_line(
    cancelled: Cancelled, *, engine_end: RunLog | None = None, last: RunLog | None = None
) -> RunLog:
    """`run 1 cancelled through the API`, saying which of Prefect's lines it stands for; at the
    cancel's time, or the last line shown's when that is later, so the tail stays in time order."""
    reason = cancelled.reason or "cancelled"
    said = reason if reason.startswith("cancelled") else f"cancelled: {reason}"
    left_out = (
        f" (not shown: Prefect's `{engine_end.message}` as its flow-run process stopped, and "
        "what its worker logged after it, loading the flow again to look for on_cancellation "
        "hooks)"
        if engine_end
        else ""
    )
    times = [time for time in (cancelled.at, last.timestamp if last else None) if time]
    return RunLog(
        id=f"run-{cancelled.run_id}-cancelled",
        timestamp=max(times) if times else utcnow(),
        level="INFO",
        logger="pipeline",
        message=f"run {cancelled.run_id} {said}{left_out}",
        task_run_id=None,
    )


def never_in_prefect(cancelled: Cancelled | None, *, offset: int) -> list[RunLog]:
    """The lines of a run that never reached Prefect (no flow run): none, or a cancelled one's
    single line saying so."""
    return [cancelled_line(cancelled)] if cancelled is not None and offset == 0 else []


def _run_log(log: Log) -> RunLog:
    return RunLog(
        id=str(log.id),
        timestamp=log.timestamp,
        level=logging.getLevelName(log.level),
        logger=log.name,
        message=log.message,
        task_run_id=str(log.task_run_id) if log.task_run_id else None,
    )
