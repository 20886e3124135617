"""Flow runs of the deployment that no run has: the watchdog's pass over them.

A run of a schedule gets its row only when its flow-run process claims it (claim.py). A worker
takes a scheduled run ~10 s before it is due and its process waits for the time; a stack stopped
then ended that flow run Crashed before any of the flow began, and nothing of it was left in the
service's history. Such a flow run never claimed a run, so none of it ran: it gets its row and is
scheduled again, for a worker to run it (caught up, as the runs a schedule missed while the stack
was down are). One a worker that is gone left Pending or Running gets its row and nothing more:
the watchdog judges it as any other run (it may have a process slow to start, which claims that
row; none runs it twice). The row is each flow run's token: a unique column, made once, so two
passes (two API processes) never schedule one flow run again twice."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import DeploymentSchedule, FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.config import get_settings
from app.db import get_sessionmaker, lock_for_write
from app.models import Pipeline, PipelineRun, Status, utcnow
from app.pipeline import orchestrator, pool
from app.pipeline.reconcile import flow_run_fixes
from app.pipeline.reconcile.isolated import Isolated
from app.pipeline.schedules import read_pipeline_schedules
from app.pipeline.status import new_stage_rows, run_id_from_tags

logger = logging.getLogger(__name__)

# how far back a flow run may have been due: a stack stopped for longer leaves its crash behind
LOOK_BACK = timedelta(days=7)
# pages of READ_LIMIT flow runs read a pass at most (Crashed runs that had their run count too)
MOST_PAGES = 10
# a pipeline made after its flow run (by more than the clocks' difference may err) is another
# database's pipeline of the same id: its ids began at 1 again
CLOCKS_ERR = timedelta(seconds=2)
# the longest the row's transaction waits for Prefect (a flow run set Scheduled meanwhile, its row
# rolled back, makes its own row as its process claims it: still run once)
PREFECT_WAIT = 5.0
SCHEDULED_AGAIN = (
    "watchdog: scheduled again: it ended Crashed before its process began the pipeline's run "
    "(the stack or its worker stopped as it started), so none of it ran; a worker runs it now, "
    "as a scheduled run missed while the stack was down is caught up"
)


@dataclass(frozen=True)
class Rescued:
    """A flow run that had no run, and the run it has now."""

    flow_run_id: str
    run_id: int
    scheduled_again: bool  # else left by a gone worker, judged from now on as any other run


class _Left(Exception):
    """The flow run moved on in Prefect before it was scheduled again: its row is not made."""


# one flow run's error is that flow run's: logged once, the pass goes on with the others
_rescuing = Isolated(logger, "giving a run to flow run")


async def rescue_unclaimed() -> list[Rescued]:
    """Give a run to each flow run of the deployment that has none and will not claim one; the
    Crashed ones are scheduled again. What was done, by flow run."""
    lost = await _without_runs(await _read_flow_runs())
    _rescuing.keep_only(str(flow_run.id) for flow_run, _ in lost)
    if not lost:
        return []
    offset = await pool.prefect_clock_offset()
    crashed = any(run.state and run.state.type == StateType.CRASHED for run, _ in lost)
    schedules = await read_pipeline_schedules() if crashed else {}
    rescued = []
    for flow_run, pipeline_id in lost:
        with _rescuing.each(str(flow_run.id)):
            done = await _rescue(flow_run, pipeline_id, offset, schedules)
            if done is not None:
                rescued.append(done)
    return rescued


async def _read_flow_runs() -> list[FlowRun]:
    """The deployment's flow runs that ended Crashed, or are Pending or Running, due lately."""
    flow_name, deployment_name = get_settings().deployment_name.split("/", 1)
    types = [StateType.CRASHED, StateType.PENDING, StateType.RUNNING]
    found: list[FlowRun] = []
    async with orchestrator.prefect_client() as client:
        for page in range(MOST_PAGES):  # every page: those with a run (most) fill them too
            read = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=[deployment_name])
                ),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types)),
                    expected_start_time=FlowRunFilterExpectedStartTime(after_=utcnow() - LOOK_BACK),
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=orchestrator.READ_LIMIT,
                offset=page * orchestrator.READ_LIMIT,
            )
            found.extend(read)
            if len(read) < orchestrator.READ_LIMIT:
                break
    return found


def _pipeline_of(flow_run: FlowRun) -> int | None:
    """The pipeline of a flow run that gets its run when it claims it: one made without a run's
    tag (a schedule's, or one started in Prefect's UI with the pipeline's id)."""
    pipeline_id = flow_run.parameters.get("pipeline_id")
    if run_id_from_tags(flow_run.tags) is not None or type(pipeline_id) is not int:
        return None
    return pipeline_id


async def _without_runs(flow_runs: list[FlowRun]) -> list[tuple[FlowRun, int]]:
    """Those of `flow_runs` without a run's tag whose id no run has, with their pipeline."""
    ours = [(run, pipeline_id) for run in flow_runs if (pipeline_id := _pipeline_of(run))]
    if not ours:
        return []
    async with get_sessionmaker()() as session:
        had = set(
            await session.scalars(
                select(PipelineRun.prefect_flow_run_id).where(
                    PipelineRun.prefect_flow_run_id.in_([str(run.id) for run, _ in ours])
                )
            )
        )
    return [(run, pipeline_id) for run, pipeline_id in ours if str(run.id) not in had]


async def _rescue(
    flow_run: FlowRun,
    pipeline_id: int,
    offset: timedelta,
    schedules: dict[int, DeploymentSchedule],
) -> Rescued | None:
    """Its run, made now (and, Crashed, the flow run scheduled again); None: left as it is."""
    state = flow_run.state
    if state is None:
        return None
    flow_run_id = str(flow_run.id)
    if state.type == StateType.CRASHED:
        schedule = schedules.get(pipeline_id)
        if flow_run.auto_scheduled and not (schedule and schedule.active):
            return None  # paused or removed since: its runs are skipped, this one too

        async def again() -> bool:
            return await flow_run_fixes.schedule_again(
                flow_run_id, SCHEDULED_AGAIN, still=state.id, at=flow_run.expected_start_time
            )

        run_id = await _give_run(flow_run, pipeline_id, offset, created_at=None, then=again)
        if run_id is not None:
            logger.warning(
                "watchdog: flow run %s of pipeline %d ended Crashed before it began, with no "
                "run: scheduled again as run %d",
                flow_run_id,
                pipeline_id,
                run_id,
            )
        return None if run_id is None else Rescued(flow_run_id, run_id, scheduled_again=True)
    if (utcnow() + offset - state.timestamp).total_seconds() <= _left_after(state.type):
        return None  # its process may yet claim its run
    # judged as a run whose process was seen last when Prefect made the flow run
    run_id = await _give_run(flow_run, pipeline_id, offset, created_at=flow_run.created)
    if run_id is not None:
        logger.warning(
            "watchdog: flow run %s of pipeline %d left %s with no run: now run %d",
            flow_run_id,
            pipeline_id,
            state.name,
            run_id,
        )
    return None if run_id is None else Rescued(flow_run_id, run_id, scheduled_again=False)


async def _give_run(
    flow_run: FlowRun,
    pipeline_id: int,
    offset: timedelta,
    *,
    created_at: datetime | None,
    then: Callable[[], Awaitable[bool]] | None = None,
) -> int | None:
    """Make the flow run's run, pending, unless a run has it or its pipeline is not the one it
    was made for; created `created_at` (Prefect's clock; None: now). `then`, its Prefect side,
    runs before the row is committed: a pass that sees the row sees that done. The run's id;
    None when none was made."""
    flow_run_id = str(flow_run.id)
    try:
        async with get_sessionmaker()() as session, session.begin():
            await lock_for_write(session)
            pipeline = await session.get(Pipeline, pipeline_id)
            made = flow_run.created - offset if flow_run.created else None
            if pipeline is None or (made and made < pipeline.created_at - CLOCKS_ERR):
                return None  # deleted, or another database's pipeline of that id
            taken = await session.scalar(
                select(PipelineRun.id).where(PipelineRun.prefect_flow_run_id == flow_run_id)
            )
            if taken is not None:
                return None  # claimed meanwhile
            run = PipelineRun(
                pipeline_id=pipeline_id,
                record_count=_record_count(flow_run, pipeline),
                status=Status.PENDING,
                prefect_flow_run_id=flow_run_id,
                stages=new_stage_rows(),
                created_at=min(created_at - offset, utcnow()) if created_at else utcnow(),
            )
            session.add(run)
            await session.flush()  # PostgreSQL: another pass's row for it waits for this one
            if then is not None and not await _within(PREFECT_WAIT, then, flow_run_id):
                raise _Left
            return run.id
    except (IntegrityError, _Left):
        return None  # another pass (another API process) made it first, or it moved on


async def _within(seconds: float, then: Callable[[], Awaitable[bool]], flow_run_id: str) -> bool:
    """`then`, while the row's transaction holds SQLite's write lock: every run's writes wait."""
    try:
        async with asyncio.timeout(seconds):
            return await then()
    except TimeoutError:  # Prefect's unavailability, not this flow run's: it ends the pass
        raise orchestrator.PrefectUnavailableError(
            f"Prefect did not answer within {seconds:g} s as flow run {flow_run_id} was scheduled "
            "again; nothing was written, and the next pass tries again"
        ) from None


def _left_after(state: StateType) -> float:
    """How long a run may stay in `state` before the watchdog fails it, as a run's row does: a
    Pending one's process never started, a Running one's process stopped responding."""
    settings = get_settings()
    if state == StateType.PENDING:
        return settings.pending_timeout_seconds
    return settings.stale_heartbeat_seconds


def _record_count(flow_run: FlowRun, pipeline: Pipeline) -> int:
    count = flow_run.parameters.get("record_count")
    return count if type(count) is int else pipeline.record_count
