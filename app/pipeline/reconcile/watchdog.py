"""The watchdog: mirrors Prefect's view into runs we still show as pending or running, so no dead
run stays "running" — crashed workers, killed processes, runs no worker will ever pick up."""

import asyncio
import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta

from prefect.client.schemas.objects import State, StateType
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import PipelineRun, utcnow
from app.pipeline import orchestrator, pool
from app.pipeline.clocks import Clocks, database_now
from app.pipeline.reconcile import flow_run_fixes, retention, settling, unclaimed, verdicts
from app.pipeline.reconcile.flow_run_fixes import Stranded
from app.pipeline.reconcile.isolated import Isolated
from app.pipeline.reconcile.prefect_reach import PrefectReach
from app.pipeline.reconcile.verdicts import (
    BEGAN_AS_CANCELLED,
    STARTED_AS_CANCELLED,
    DatabaseOutage,
    Verdict,
    age,
)
from app.pipeline.reconcile.verdicts import NO_WORKER_FIX as NO_WORKER_FIX
from app.pipeline.status import (
    UNFINISHED,
    adopt_flow_run,
    flow_run_key,
    update_pipeline_status,
)
from app.pipeline.transient import is_transient

logger = logging.getLogger(__name__)


async def unfinished_runs() -> list[PipelineRun]:
    return (await unfinished_runs_read_at())[0]


async def unfinished_runs_read_at() -> tuple[list[PipelineRun], datetime]:
    """The runs still pending or running, and the database's clock as they were read."""
    async with get_sessionmaker()() as session:
        query = (
            select(PipelineRun)
            .where(PipelineRun.status.in_(UNFINISHED))
            .order_by(PipelineRun.id)
            .options(selectinload(PipelineRun.stages))
        )
        runs = list((await session.execute(query)).scalars())
        return runs, await database_now(session)


_last_taking = time.monotonic()  # when a worker last took runs, or this process started


def worker_missing(taking_runs: bool, timeout: float) -> bool:
    """No worker has taken runs for `timeout`, as this process watched: a stack starts its API
    before its workers, an API started after a long stop finds pending runs older than the
    timeout that a worker starting beside it is about to take, and a worker restarted (a deploy)
    is gone for the seconds between its stop and its successor's first heartbeat."""
    global _last_taking
    now = time.monotonic()
    if taking_runs:
        _last_taking = now
    return now - _last_taking >= timeout


class DatabaseReach:
    """Whether the watchdog's reads reach the database, and its last outage: a run's process
    can write no heartbeat while the database is away, so its silence counts from the return."""

    def __init__(self) -> None:
        self.down_since: datetime | None = None
        self.last: DatabaseOutage | None = None
        # a silence is judged over time this process watched: an API restarted during an
        # outage, or another replica's, never saw it, and a run waiting it out looked dead
        self.watching_since = utcnow()

    def failed(self, exc: BaseException) -> None:
        if self.down_since is None and is_transient(exc):
            self.down_since = utcnow()
            logger.warning(
                "watchdog: the database is unreachable (%s: %s); runs are judged again once it "
                "is back, their silence counted from then",
                type(exc).__name__,
                exc,
            )

    def reached(self) -> None:
        if self.down_since is not None:
            self.last = DatabaseOutage(self.down_since, utcnow())
            self.down_since = None
            logger.warning(
                "watchdog: the database is reachable again, after %.0f s", self.last.seconds
            )


database_reach = DatabaseReach()
prefect_reach = PrefectReach()


def judge(
    run: PipelineRun,
    state: State | None,
    *,
    now: datetime | Clocks,
    live_workers: bool,
    watching: bool = False,
) -> Verdict | None:
    """verdicts.judge, knowing the database's last outage as this process saw it; `watching`:
    for the watchdog's own pass, which judges a silence only over the time it has watched (a
    read-only count, as `make doctor`'s, judges at once)."""
    return verdicts.judge(
        run,
        state,
        now=now,
        live_workers=live_workers,
        outage=database_reach.last,
        watched_since=database_reach.watching_since if watching else None,
    )


# one run's error is that run's: logged once, the pass goes on with the runs after it
_judging = Isolated(logger, "run")
_adopting = Isolated(logger, "adopting a flow run for run")


async def reconcile_once() -> list[Verdict]:
    """One pass over every unfinished run, and over the runs ended lately that Prefect still
    shows unfinished (settling.py); returns what was changed among the unfinished."""
    try:
        changed = await _reconcile_unfinished()
        await settling.settle_ended()
    except Exception as exc:
        database_reach.failed(exc)
        raise
    return changed


async def _reconcile_unfinished() -> list[Verdict]:
    runs = await unfinished_runs()
    database_reach.reached()
    if not runs:
        return []
    if await _adopt_flow_runs(runs, utcnow()):
        runs = await unfinished_runs()
    flow_runs = {run.id: run.prefect_flow_run_id for run in runs}
    states = await orchestrator.read_flow_run_states([i for i in flow_runs.values() if i])
    health = await pool.pool_health()
    live = not worker_missing(health.takes_runs, get_settings().no_worker_timeout_seconds)
    changed = []
    # Our rows are read again, after Prefect's view: a run that finished meanwhile has left the
    # list, and a flow run Prefect reports completed has written its stages (before it returned).
    runs, database = await unfinished_runs_read_at()
    api = utcnow()
    now = Clocks(api=api, database=database, prefect=api + health.prefect_clock_offset)
    _judging.keep_only(run.id for run in runs)
    for run in runs:
        if run.id not in flow_runs or flow_runs[run.id] != run.prefect_flow_run_id:
            continue  # new, or triggered while we looked: the next pass sees it whole
        with _judging.each(run.id):
            state = states.get(run.prefect_flow_run_id) if run.prefect_flow_run_id else None
            verdict = judge(run, state, now=now, live_workers=live, watching=True)
            if verdict is not None and (applied := await _apply(run, state, verdict)):
                changed.append(applied)
    return changed


async def _adopt_flow_runs(runs: list[PipelineRun], now: datetime) -> bool:
    """Runs older than a trigger can take and still without a flow run: if Prefect has one for
    them (the API process stopped between creating it and writing its id), they get it."""
    overdue = orchestrator.trigger_deadline().total_seconds()
    lost = {
        r.id: flow_run_key(r.id, r.created_at)
        for r in runs
        if not r.prefect_flow_run_id and age(r.created_at, now) > overdue
    }
    adopted = False
    _adopting.keep_only(lost)
    for run_id, flow_run_id in (await orchestrator.find_flow_runs(lost)).items():
        with _adopting.each(run_id):
            if await adopt_flow_run(run_id=run_id, flow_run_id=flow_run_id):
                logger.warning("watchdog: run %d adopts flow run %s", run_id, flow_run_id)
                adopted = True
    return adopted


async def _apply(run: PipelineRun, state: State | None, verdict: Verdict) -> Verdict | None:
    """Tell Prefect, then our row; the verdict written (None: the run moved on meanwhile)."""
    if run.prefect_flow_run_id and state is not None and not state.is_final():
        message = f"watchdog: {verdict.reason}"
        if state.type in (StateType.RUNNING, StateType.CANCELLING):
            await flow_run_fixes.mark_flow_run_crashed(run.prefect_flow_run_id, message)
        elif state.type == StateType.PENDING:  # only while no process has made it Running
            cancel = await flow_run_fixes.cancel_stranded_flow_run(
                run.prefect_flow_run_id, message, still=StateType.PENDING
            )
            if cancel == Stranded.LEFT:
                return None  # it started meanwhile: the next pass judges it afresh
            if cancel == Stranded.STARTED:  # as it was cancelled: our row says so
                verdict = replace(verdict, reason=STARTED_AS_CANCELLED)
        else:  # Scheduled, Late, AwaitingRetry, Paused
            cancel = await flow_run_fixes.cancel_stranded_flow_run(run.prefect_flow_run_id, message)
            if cancel == Stranded.STARTED:  # it began as it was cancelled, and is being stopped
                verdict = replace(verdict, reason=f"{verdict.reason} {BEGAN_AS_CANCELLED}")
    if not await update_pipeline_status(
        run.pipeline_id,
        None,
        verdict.status,
        error=verdict.reason,
        run_id=run.id,
        ended_at=verdict.ended_at,
    ):
        return None  # it finished on its own meanwhile (the write counted it, see telemetry)
    logger.warning("watchdog: run %d %s: %s", run.id, verdict.status.value, verdict.reason)
    return verdict


# Retention looks at every run directory; the files of finished runs can wait a minute.
SWEEP_INTERVAL = timedelta(minutes=1)


class Watchdog:
    """A small named service: reconcile every `interval`; sweep the run directories, and give
    flow runs without a run theirs, at most every SWEEP_INTERVAL; from start() until stop()."""

    def __init__(self, interval: timedelta) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="pipeline-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        next_sweep = next_rescue = 0.0
        while True:
            try:
                await reconcile_once()
            except orchestrator.PrefectUnavailableError as exc:
                prefect_reach.failed(exc)
            except Exception as exc:
                if not is_transient(exc):  # an outage is logged once (DatabaseReach)
                    logger.exception("watchdog pass failed")
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_INTERVAL.total_seconds()
                try:
                    await retention.sweep_runs()
                except Exception as exc:
                    if not is_transient(exc):
                        logger.exception("retention pass failed")
                    else:  # the outage is said once (DatabaseReach); swept when it is back
                        next_sweep = 0.0
            if time.monotonic() >= next_rescue:
                done = await _rescue_unclaimed()  # else again next pass: Prefect is starting
                next_rescue = time.monotonic() + SWEEP_INTERVAL.total_seconds() if done else 0.0
            await asyncio.sleep(self.interval.total_seconds())


async def _rescue_unclaimed() -> bool:
    """Flow runs without a run (unclaimed.py), once a minute with the sweep: their crash came as
    the stack stopped, and the first pass after it starts finds them. False: Prefect did not
    answer."""
    try:
        await unclaimed.rescue_unclaimed()
    except orchestrator.PrefectUnavailableError as exc:
        prefect_reach.failed(exc)
        return False
    except Exception as exc:
        if not is_transient(exc):  # an outage is logged once (DatabaseReach)
            logger.exception("watchdog: the pass over flow runs without a run failed")
        return True
    prefect_reach.reached()  # it read the deployment's flow runs from Prefect
    return True
