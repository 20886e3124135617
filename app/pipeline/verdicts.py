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


def age(since: datetime | None, now: datetime) -> float:
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
    pending = age(state.timestamp, clocks.prefect)
    lively = [age(t, clocks.database) for t in (run.heartbeat_at, run.started_at) if t]
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
