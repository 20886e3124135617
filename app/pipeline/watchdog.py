"""The watchdog: mirrors Prefect's view into runs we still show as pending or running, so no dead
run stays "running" — crashed workers, killed processes, runs no worker will ever pick up."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prefect.client.schemas.objects import State, StateType
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline import orchestrator, pool, retention, settling
from app.pipeline.clocks import Clocks, database_now
from app.pipeline.status import (
    UNFINISHED,
    adopt_flow_run,
    flow_run_key,
    update_pipeline_status,
)

logger = logging.getLogger(__name__)

NO_WORKER_FIX = (
    "no worker is taking runs from pool '{pool}' — start one (prefect worker start --pool {pool} "
    "--type process), resume the pool if paused, or raise its concurrency limit"
)


@dataclass(frozen=True)
class Verdict:
    """What the watchdog decided for one run."""

    run_id: int
    status: Status
    reason: str
    # when the run really ended, when known: Prefect's final state, the last sign of life
    ended_at: datetime | None = field(default=None, compare=False)


async def unfinished_runs() -> list[PipelineRun]:
    return (await unfinished_runs_read_at())[0]


async def unfinished_runs_read_at() -> tuple[list[PipelineRun], datetime]:
    """The runs still pending or running, and the database's clock as they were read."""
    async with get_sessionmaker()() as session:
        query = (
            select(PipelineRun)
            .where(PipelineRun.status.in_(UNFINISHED))
            .options(selectinload(PipelineRun.stages))
        )
        runs = list((await session.execute(query)).scalars())
        return runs, await database_now(session)


def _age(since: datetime | None, now: datetime) -> float:
    return (now - since).total_seconds() if since else 0.0


def _stranded_pending(
    run: PipelineRun, state: State, clocks: Clocks, *, live_workers: bool
) -> Verdict | None:
    """A worker took the flow run (Pending) and its launcher died with it before the run's
    process began: Prefect never offers a Pending run again. Healthy, a Pending lasts as long
    as its process takes to start; with no worker left, no process is starting. Failed, not
    handed back (Scheduled): a process merely slow would run alongside the one another worker
    starts; a failed run never starts (claim_run)."""
    settings = get_settings()
    bound = settings.pending_timeout_seconds
    if not live_workers:
        bound = min(bound, settings.no_worker_timeout_seconds)
    pending = _age(state.timestamp, clocks.prefect)
    lively = [_age(t, clocks.database) for t in (run.heartbeat_at, run.started_at) if t]
    if pending <= bound or any(age <= bound for age in lively):
        return None  # young, or its process began a stage or beat lately
    return Verdict(
        run.id,
        Status.FAILED,
        f"the worker that took it stopped before starting it (Pending in Prefect for "
        f"{pending:.0f} s; its flow-run process never began); trigger the pipeline again",
    )


def judge(
    run: PipelineRun,
    state: State | None,
    *,
    now: datetime | Clocks,
    live_workers: bool,
) -> Verdict | None:
    """The final status a stranded run should get, with a reason a person understands; None
    while the run is still healthy. Each of its moments is aged on the clock that wrote it."""
    settings = get_settings()
    clocks = now if isinstance(now, Clocks) else Clocks.one(now)
    if run.prefect_flow_run_id is None:
        if _age(run.created_at, clocks.api) > orchestrator.trigger_deadline().total_seconds():
            return Verdict(run.id, Status.FAILED, "the trigger never reached Prefect")
        return None
    if state is None:
        return Verdict(run.id, Status.FAILED, "its Prefect flow run no longer exists")
    detail = f" ({state.message})" if state.message else ""
    ended = state.timestamp if state.is_final() else None  # not when the watchdog came by
    if state.type == StateType.COMPLETED:
        unfinished = [s.name for s in run.stages if s.status != Status.COMPLETED]
        if not unfinished:
            return Verdict(run.id, Status.COMPLETED, "completed in Prefect", ended)
        return Verdict(
            run.id,
            Status.FAILED,
            f"Prefect reports completed but stages {unfinished} did not finish",
            ended,
        )
    if state.type == StateType.FAILED:
        return Verdict(run.id, Status.FAILED, f"the Prefect flow run failed{detail}", ended)
    if state.type == StateType.CRASHED:
        return Verdict(
            run.id,
            Status.FAILED,
            f"the worker or its flow-run process died (Prefect: Crashed{detail})",
            ended,
        )
    if state.type == StateType.CANCELLED:
        return Verdict(run.id, Status.CANCELLED, f"cancelled in Prefect{detail}", ended)
    if state.type in (StateType.RUNNING, StateType.CANCELLING):
        # a process that never beat is judged from when Prefect saw it start, not when queued
        signs = [
            (_age(moment, clock), moment)
            for moment, clock in (
                (run.heartbeat_at, clocks.database),
                (run.started_at, clocks.database),
                (state.timestamp, clocks.prefect),
                (run.created_at, clocks.api),
            )
            if moment
        ]
        silent, last_sign = min(signs, key=lambda sign: sign[0])
        if silent > settings.stale_heartbeat_seconds:
            return Verdict(
                run.id,
                Status.FAILED,
                f"its flow-run process stopped responding (no heartbeat for {silent:.0f} s; "
                "worker or process killed?)",
                last_sign,
            )
        return None
    if state.type == StateType.PENDING:  # a worker took it: judged from then, not from queued
        return _stranded_pending(run, state, clocks, live_workers=live_workers)
    # a flow run failed and waiting to run again (PIPELINE_FLOW_RETRIES) waits from then
    retrying = state.name == "AwaitingRetry" and state.timestamp is not None
    waited = _age(state.timestamp, clocks.prefect) if retrying else _age(run.created_at, clocks.api)
    pool = settings.work_pool_name
    if (not live_workers and waited > settings.no_worker_timeout_seconds) or (
        waited > settings.queued_timeout_seconds
    ):
        return Verdict(
            run.id,
            Status.FAILED,
            f"not started after {waited:.0f} s in Prefect state {state.name}: "
            + NO_WORKER_FIX.format(pool=pool),
        )
    return None


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


async def reconcile_once() -> list[Verdict]:
    """One pass over every unfinished run, and over the runs ended lately that Prefect still
    shows unfinished (settling.py); returns what was changed among the unfinished."""
    verdicts = await _reconcile_unfinished()
    await settling.settle_ended()
    return verdicts


async def _reconcile_unfinished() -> list[Verdict]:
    runs = await unfinished_runs()
    if not runs:
        return []
    if await _adopt_flow_runs(runs, utcnow()):
        runs = await unfinished_runs()
    flow_runs = {run.id: run.prefect_flow_run_id for run in runs}
    states = await orchestrator.read_flow_run_states([i for i in flow_runs.values() if i])
    health = await pool.pool_health()
    live = not worker_missing(health.takes_runs, get_settings().no_worker_timeout_seconds)
    verdicts = []
    # Our rows are read again, after Prefect's view: a run that finished meanwhile has left the
    # list, and a flow run Prefect reports completed has written its stages (before it returned).
    runs, database = await unfinished_runs_read_at()
    api = utcnow()
    now = Clocks(api=api, database=database, prefect=api + health.prefect_clock_offset)
    for run in runs:
        if run.id not in flow_runs or flow_runs[run.id] != run.prefect_flow_run_id:
            continue  # new, or triggered while we looked: the next pass sees it whole
        state = states.get(run.prefect_flow_run_id) if run.prefect_flow_run_id else None
        verdict = judge(run, state, now=now, live_workers=live)
        if verdict is not None and await _apply(run, state, verdict):
            verdicts.append(verdict)
    return verdicts


async def _adopt_flow_runs(runs: list[PipelineRun], now: datetime) -> bool:
    """Runs older than a trigger can take and still without a flow run: if Prefect has one for
    them (the API process stopped between creating it and writing its id), they get it."""
    overdue = orchestrator.trigger_deadline().total_seconds()
    lost = {
        r.id: flow_run_key(r.id, r.created_at)
        for r in runs
        if not r.prefect_flow_run_id and _age(r.created_at, now) > overdue
    }
    adopted = False
    for run_id, flow_run_id in (await orchestrator.find_flow_runs(lost)).items():
        if await adopt_flow_run(run_id=run_id, flow_run_id=flow_run_id):
            logger.warning("watchdog: run %d adopts flow run %s", run_id, flow_run_id)
            adopted = True
    return adopted


async def _apply(run: PipelineRun, state: State | None, verdict: Verdict) -> bool:
    if run.prefect_flow_run_id and state is not None and not state.is_final():
        message = f"watchdog: {verdict.reason}"
        if state.type in (StateType.RUNNING, StateType.CANCELLING):
            await orchestrator.mark_flow_run_crashed(run.prefect_flow_run_id, message)
        elif state.type == StateType.PENDING:  # only while no process has made it Running
            if not await orchestrator.cancel_stranded_flow_run(
                run.prefect_flow_run_id, message, still=StateType.PENDING
            ):
                return False  # it started meanwhile: the next pass judges it afresh
        else:
            await orchestrator.cancel_stranded_flow_run(run.prefect_flow_run_id, message)
    if not await update_pipeline_status(
        run.pipeline_id,
        None,
        verdict.status,
        error=verdict.reason,
        run_id=run.id,
        ended_at=verdict.ended_at,
    ):
        return False  # it finished on its own meanwhile (the write counted it, see telemetry)
    logger.warning("watchdog: run %d %s: %s", run.id, verdict.status.value, verdict.reason)
    return True


# Retention looks at every run directory; the files of finished runs can wait a minute.
SWEEP_INTERVAL = timedelta(minutes=1)


class Watchdog:
    """A small named service: reconcile every `interval`, sweep the run directories at most every
    SWEEP_INTERVAL, from start() until stop()."""

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
        next_sweep = 0.0
        while True:
            try:
                await reconcile_once()
            except orchestrator.PrefectUnavailableError as exc:
                logger.warning("watchdog: %s", exc)
            except Exception:
                logger.exception("watchdog pass failed")
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_INTERVAL.total_seconds()
                try:
                    await retention.sweep_runs()
                except Exception:
                    logger.exception("retention pass failed")
            await asyncio.sleep(self.interval.total_seconds())
