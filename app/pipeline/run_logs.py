"""A flow run's log lines, as its process and its task runs sent them to Prefect: what the API's
logs endpoint, the dashboard's log tail and `pipeline logs` show.

A cancelled run's lines end with one of the service's own, saying it was cancelled and by what.
Prefect 3.8.8 ends them otherwise: its engine, stopped by the cancel's SIGTERM before its worker
sets Cancelled, logs `Finished in state Running()`; its worker then loads the flow again to look
for `on_cancellation` hooks, and that load's deployment pull steps log as the run's own lines
(`Running 1 deployment pull step(s)` …), as if it started again. Those lines, from the engine's
last one after the cancel on, are left out of a cancelled run's; a process killed before its
engine logged that line (SIGKILL, 5 s after the SIGTERM, while a long Polars query runs) logs
none, and the lines are cut from the reload's first one instead."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp
from prefect.client.schemas.objects import Log, StateType
from prefect.client.schemas.sorting import LogSort
from prefect.exceptions import ObjectNotFound

from app.config import get_settings
from app.models import utcnow
from app.pipeline.orchestrator import PrefectUnavailableError, prefect_client, shown_api_url

ENGINE_LOGGER = "prefect.flow_runs"  # the flow run's own logger: its engine's lines, and the load's
WORKER_LOGGERS = f"{ENGINE_LOGGER}."  # its worker's (…worker) and runner's (…runner) children
ENGINE_END = "Finished in state "
# a load of the flow from its deployment, by its process as it starts or by its worker after
RELOAD = re.compile(r"Running \d+ deployment pull step\(s\)")
PULL_STEP = re.compile(
    rf"{RELOAD.pattern}|Executing deployment step: .*|Deployment step '.*' completed "
    "successfully|All deployment steps completed successfully"
)
ENDING_LINES = 50  # where a cancelled run's cut (engine's end, worker's reload) is looked for
# a cancelled run whose lines have no cut this long after the cancel has none coming (a cancel
# before its process started): its line is shown without it; at once when Prefect shows the flow
# run Cancelled and no process of it logged a line of its own
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
CancelledInPrefect = Callable[[], Awaitable[bool]]


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

        async def cancelled_in_prefect() -> bool:
            try:
                state = (await client.read_flow_run(UUID(flow_run_id))).state
            except ObjectNotFound:
                return False
            return state is not None and state.type == StateType.CANCELLED

        try:
            # one attempt's time in all: Prefect's client would retry a server that does not
            # answer for ~2 minutes, and a dashboard polls its logs every second
            async with asyncio.timeout(settings.prefect_timeout_seconds):
                if cancelled is None:
                    return await read(limit, offset, tail=tail)
                return await _cancelled_lines(
                    read, cancelled, limit, offset, tail=tail, in_prefect=cancelled_in_prefect
                )
        except TimeoutError:
            raise PrefectUnavailableError(
                f"Prefect API at {shown_api_url()} did not answer within "
                f"{settings.prefect_timeout_seconds:g} s (PIPELINE_PREFECT_TIMEOUT_SECONDS); "
                "check the Prefect server's log and its database."
            ) from None


async def _cancelled_lines(
    read: Read,
    cancelled: Cancelled,
    limit: int,
    offset: int,
    *,
    tail: bool,
    in_prefect: CancelledInPrefect,
) -> list[RunLog]:
    """A cancelled run's lines up to its engine's last one, or its worker's reload of the flow,
    then the service's line: paged as one sequence, the cut made by Prefect's own filter (its
    lines before that time)."""
    ending = await read(ENDING_LINES, 0, tail=True)
    cut = _cut(ending, cancelled.at)
    waited = cancelled.at is None or utcnow() - cancelled.at >= ENGINE_END_GRACE
    if cut is None and not waited and not await _never_ran(ending, in_prefect):
        return await read(limit, offset, tail=tail)  # its process may still be stopping
    before = cut.timestamp - timedelta(microseconds=1) if cut else None
    shown = [line for line in ending if before is None or line.timestamp <= before]
    if not shown and before is not None and len(ending) == ENDING_LINES:  # cut above the window
        shown = await read(1, 0, tail=True, before=before)
    end = cancelled_line(cancelled, cut=cut, last=shown[-1] if shown else None)
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


def _cut(ending: list[RunLog], cancelled_at: datetime | None) -> RunLog | None:
    """Where a cancelled run's lines are cut: at its engine's last line after the cancel or, the
    first if both came, its worker's reload of the flow."""
    found = [
        line for line in (_engine_end(ending, cancelled_at), _reload(ending, cancelled_at)) if line
    ]
    return min(found, key=ending.index) if found else None


def _engine_end(ending: list[RunLog], cancelled_at: datetime | None) -> RunLog | None:
    """The engine's last line after the cancel. An end logged before it is not the cancel's (an
    earlier attempt's, from a process that ran the flow run before; a `Completed()` the cancel
    raced): the lines after it are still the run's."""
    return next(
        (
            line
            for line in reversed(ending)
            if _engines(line)
            and line.message.startswith(ENGINE_END)
            and (cancelled_at is None or line.timestamp >= cancelled_at)
        ),
        None,
    )


def _reload(ending: list[RunLog], cancelled_at: datetime | None) -> RunLog | None:
    """The first line after the cancel of a load of the flow (`Running 1 deployment pull
    step(s)`) that is not the process's own, as it starts: one that comes once the process has
    logged (a line that is not its worker's; every line before a full window is the process's,
    which begins with its load)."""
    logged = len(ending) == ENDING_LINES
    for line in ending:
        if (
            logged
            and _engines(line)
            and RELOAD.fullmatch(line.message)
            and (cancelled_at is None or line.timestamp >= cancelled_at)
        ):
            return line
        logged = logged or not line.logger.startswith(WORKER_LOGGERS)
    return None


def _engines(line: RunLog) -> bool:
    """A line of the flow run's own logger, not of one of its task runs."""
    return line.logger == ENGINE_LOGGER and line.task_run_id is None


async def _never_ran(ending: list[RunLog], in_prefect: CancelledInPrefect) -> bool:
    """No process of the run ran its flow (none of its lines but a load's), and Prefect's flow run
    is Cancelled, which its worker sets once it has stopped the process: no line will come."""
    return (
        len(ending) < ENDING_LINES
        and all(
            line.logger.startswith(WORKER_LOGGERS)
            or (line.logger == ENGINE_LOGGER and PULL_STEP.fullmatch(line.message))
            for line in ending
        )
        and await in_prefect()
    )


def cancelled_line(
    cancelled: Cancelled, *, cut: RunLog | None = None, last: RunLog | None = None
) -> RunLog:
    """`run 1 cancelled through the API`, saying which of Prefect's lines it stands for; at the
    cancel's time, or the last line shown's when that is later, so the tail stays in time order."""
    reason = cancelled.reason or "cancelled"
    said = reason if reason.startswith("cancelled") else f"cancelled: {reason}"
    if cut is None:
        left_out = ""
    elif cut.message.startswith(ENGINE_END):
        left_out = (
            f" (not shown: Prefect's `{cut.message}` as its flow-run process stopped, and what "
            "its worker logged after it, loading the flow again to look for on_cancellation hooks)"
        )
    else:
        left_out = (
            f" (not shown: Prefect's `{cut.message}` and what followed it, logged by its worker "
            "loading the flow again to look for on_cancellation hooks once its flow-run process "
            "was stopped)"
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
