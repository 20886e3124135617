"""What the watchdog decides for one run it still shows pending or running, from its row and
Prefect's state: a final status and a reason a person understands, or None while it is healthy."""

from dataclasses import dataclass, field
from datetime import datetime

from prefect.client.schemas.objects import State, StateType

from app.config import get_settings
from app.models import PipelineRun, Status
from app.pipeline import orchestrator
from app.pipeline.clocks import Clocks

NO_WORKER_FIX = (
    "no worker is taking runs from pool '{pool}' — start one (prefect worker start --pool {pool} "
    "--type process), resume the pool if paused, or raise its concurrency limit"
)
BEGAN_AS_CANCELLED = "(its flow-run process began just as the run was cancelled, and was stopped)"
STARTED_AS_CANCELLED = (
    "its flow-run process began too late: Prefect's flow run was cancelled as it started, "
    "Pending for longer than the watchdog waits (PIPELINE_PENDING_TIMEOUT_SECONDS); trigger the "
    "pipeline again"
)


@dataclass(frozen=True)
class Verdict:
    """What the watchdog decided for one run."""

    run_id: int
    status: Status
    reason: str
    # when the run really ended, when known: Prefect's final state, the last sign of life
    ended_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DatabaseOutage:
    """A time the watchdog could not reach the database, by the API's clock: from its first
    failed read to its first read that worked again. Nothing a run does can be written then."""

    began: datetime
    ended: datetime

    @property
    def seconds(self) -> float:
        return (self.ended - self.began).total_seconds()


def age(since: datetime | None, now: datetime) -> float:
    return (now - since).total_seconds() if since else 0.0


def _stranded_pending(
    run: PipelineRun,
    state: State,
    clocks: Clocks,
    *,
    live_workers: bool,
    outage: DatabaseOutage | None,
) -> Verdict | None:
    """A worker took the flow run (Pending) and its launcher died with it before the run's
    process began, or the process failed before it told Prefect it runs: Prefect never offers a
    Pending run again. Healthy, a Pending lasts as long
    as its process takes to start; with no worker left, no process is starting. Failed, not
    handed back (Scheduled): a process merely slow would run alongside the one another worker
    starts; a failed run never starts (claim_run)."""
    settings = get_settings()
    bound = settings.pending_timeout_seconds
    if not live_workers:
        bound = min(bound, settings.no_worker_timeout_seconds)
    pending = age(state.timestamp, clocks.prefect)
    lively = [age(t, clocks.database) for t in (run.heartbeat_at, run.started_at) if t]
    if pending <= bound or any(age <= bound for age in lively):
        return None  # young, or its process began a stage or beat lately
    # Whether a process began is not known: one that failed before telling Prefect it runs (its
    # server failing) is no different here from one never started, but in its worker's log.
    why = "its worker stopped, or the process it started failed before the run began"
    if outage is not None and age(outage.ended, clocks.api) < pending:
        why = (
            f"the database was unreachable for {outage.seconds:.0f} s meanwhile, which fails a "
            "process as it starts; or its worker stopped"
        )
    return Verdict(
        run.id,
        Status.FAILED,
        f"no flow-run process started it (Pending in Prefect for {pending:.0f} s since a worker "
        f"took it: {why}; see the worker's log); trigger the pipeline again",
    )


def _silent(
    run: PipelineRun,
    silent: float,
    last_sign: datetime,
    clocks: Clocks,
    outage: DatabaseOutage | None,
    watched_since: datetime | None,
) -> Verdict | None:
    """A running run whose process last gave a sign `silent` s ago: failed once that is more
    than the stale age, counted from the database's return when it was unreachable since, and
    from when the watchdog began watching (an outage before it started, it did not see)."""
    stale = get_settings().stale_heartbeat_seconds
    back = age(outage.ended, clocks.api) if outage is not None else silent
    watched = age(watched_since, clocks.api) if watched_since is not None else silent
    if min(silent, back, watched) <= stale:
        return None
    if back >= silent:  # no outage since its last sign
        why = f"no heartbeat for {silent:.0f} s; worker or process killed?"
    else:
        why = (
            f"no heartbeat for {silent:.0f} s, {back:.0f} s since the database was reachable "
            f"again after {outage.seconds if outage else 0:.0f} s unreachable: it may have given "
            "up waiting for it (PIPELINE_DATABASE_RETRY_SECONDS; see the run's log), or its "
            "worker or process was killed"
        )
    return Verdict(
        run.id, Status.FAILED, f"its flow-run process stopped responding ({why})", last_sign
    )


def judge(
    run: PipelineRun,
    state: State | None,
    *,
    now: datetime | Clocks,
    live_workers: bool,
    outage: DatabaseOutage | None = None,
    watched_since: datetime | None = None,
) -> Verdict | None:
    """The final status a stranded run should get, with a reason a person understands; None
    while the run is still healthy. Each of its moments is aged on the clock that wrote it.
    `outage`, the database's last as the watchdog saw it: no heartbeat could be written then;
    `watched_since`, when the watchdog's process began watching: a silence is judged only over
    time it watched (a restarted API, another replica, did not see an outage before)."""
    settings = get_settings()
    clocks = now if isinstance(now, Clocks) else Clocks.one(now)
    if run.prefect_flow_run_id is None:
        if age(run.created_at, clocks.api) > orchestrator.trigger_deadline().total_seconds():
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
            (age(moment, clock), moment)
            for moment, clock in (
                (run.heartbeat_at, clocks.database),
                (run.started_at, clocks.database),
                (state.timestamp, clocks.prefect),
                (run.created_at, clocks.api),
            )
            if moment
        ]
        silent, last_sign = min(signs, key=lambda sign: sign[0])
        return _silent(run, silent, last_sign, clocks, outage, watched_since)
    if state.type == StateType.PENDING:  # a worker took it: judged from then, not from queued
        return _stranded_pending(run, state, clocks, live_workers=live_workers, outage=outage)
    # a flow run failed and waiting to run again (PIPELINE_FLOW_RETRIES) waits from then
    retrying = state.name == "AwaitingRetry" and state.timestamp is not None
    waited = age(state.timestamp, clocks.prefect) if retrying else age(run.created_at, clocks.api)
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
