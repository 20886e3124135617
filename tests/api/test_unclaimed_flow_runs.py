"""Flow runs of the deployment that no run has, on a real database and a real Prefect server: a
scheduled run whose stack stopped as its worker held it ended Crashed with no row, and vanished
from the service's history (pipeline 4, `make down` at 01:51:27: its 01:51:32 run)."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.states import Crashed, Pending, Running, State
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import STAGE_NAMES, Pipeline, PipelineRun, Status, utcnow
from app.pipeline import orchestrator
from app.pipeline.claim import RunRef, claim_run
from app.pipeline.reconcile import unclaimed, watchdog
from app.pipeline.reconcile.unclaimed import SCHEDULED_AGAIN, Rescued
from app.pipeline.schedules import (
    delete_pipeline_schedule,
    set_pipeline_schedule,
    set_pipeline_schedule_active,
)
from tests.conftest import Configure, SetSetting
from tests.support.prefect_server import own_prefect_server
from tests.support.rows import read_run
from tests.support.watchdog_prefect import shown_age

SIGTERM = "Execution was aborted by a termination signal."
POOL = "default"


@pytest.fixture(scope="module")
def prefect_server(tmp_root: Path) -> Iterator[str]:
    """A Prefect server of this module's own (no worker): its API's URL."""
    with own_prefect_server(tmp_root / "unclaimed-flow-runs") as url:
        yield url


@pytest.fixture
async def prefect(prefect_server: str, configure: Configure) -> AsyncIterator[PrefectClient]:
    """The deployment as deploy.py makes it, with no schedule and no flow run yet."""
    await configure(PREFECT_API_URL=prefect_server)
    async with PrefectClient(api=prefect_server) as client:
        with contextlib.suppress(ObjectAlreadyExists):  # made by an earlier test
            await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        flow_id = await client.create_flow_from_name("Data Pipeline")
        with contextlib.suppress(ObjectNotFound):  # schedules and all
            old = await client.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
            await client.delete_deployment(old.id)
        for flow_run in await client.read_flow_runs(limit=200):
            await client.delete_flow_run(flow_run.id)
        await client.create_deployment(
            flow_id=flow_id, name="data-pipeline-deployment", work_pool_name=POOL
        )
        yield client


async def _pipeline(*, created: timedelta = timedelta(0), record_count: int = 1000) -> int:
    async with get_sessionmaker()() as session, session.begin():
        pipeline = Pipeline(name="p", record_count=record_count, created_at=utcnow() + created)
        session.add(pipeline)
    return pipeline.id


async def _scheduled(prefect: PrefectClient, pipeline_id: int) -> FlowRun:
    """The first run the pipeline's schedule (every 10 s) made, as a worker takes it: Pending."""
    every_10s = IntervalSchedule(interval=timedelta(seconds=10))
    await set_pipeline_schedule(
        pipeline_id=pipeline_id, record_count=1000, schedule=every_10s, active=True
    )
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    first, *_ = [
        flow_run
        for flow_run in await prefect.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=StateTypes(any_=[StateType.SCHEDULED]))
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )
        # another pipeline's runs aside, and an earlier test's: Prefect's scheduler may make a
        # run of the deployment that test left as the fixture replaces it ("Deployment not found")
        if flow_run.parameters["pipeline_id"] == pipeline_id
        and flow_run.deployment_id == deployment.id
    ]
    assert (first.auto_scheduled, first.parameters) == (
        True,
        {"pipeline_id": pipeline_id, "record_count": 1000},
    )
    await _set(prefect, first.id, Pending())
    return first


async def _set(
    prefect: PrefectClient, flow_run_id: UUID, state: State[Any], *, force: bool = False
) -> None:
    result = await prefect.set_flow_run_state(flow_run_id, state, force=force)
    assert result.status.value == "ACCEPT", result


async def _runs() -> list[dict[str, Any]]:
    """Every run, as the service's history shows it."""
    async with get_sessionmaker()() as session:
        runs = (await session.scalars(select(PipelineRun).order_by(PipelineRun.id))).all()
    shown = []
    for run in runs:
        full = await read_run(run.id)
        shown.append(
            {
                "id": full.id,
                "pipeline_id": full.pipeline_id,
                "status": full.status,
                "flow_run": full.prefect_flow_run_id,
                "record_count": full.record_count,
                "error": full.error,
                "stages": [(s.name, s.status) for s in full.stages],
            }
        )
    return shown


def _pending_run(run_id: int, pipeline_id: int, flow_run: FlowRun) -> dict[str, Any]:
    return {
        "id": run_id,
        "pipeline_id": pipeline_id,
        "status": Status.PENDING,
        "flow_run": str(flow_run.id),
        "record_count": 1000,
        "error": None,
        "stages": [(name, Status.PENDING) for name in STAGE_NAMES],
    }


def _ended_run(
    run_id: int, pipeline_id: int, flow_run: FlowRun, status: Status, error: str
) -> dict[str, Any]:
    """A run made for the flow run that ended `status` before any stage began."""
    return {
        **_pending_run(run_id, pipeline_id, flow_run),
        "status": status,
        "error": error,
        "stages": [(name, Status.CANCELLED) for name in STAGE_NAMES],
    }


async def _failed_and_settled(
    prefect: PrefectClient, flow_run: FlowRun, pipeline_id: int, reason: str, settled: StateType
) -> None:
    """Run 1 failed with `reason`, its stages cancelled, and its flow run set `settled` saying so."""
    assert await _runs() == [_ended_run(1, pipeline_id, flow_run, Status.FAILED, reason)]
    state = (await prefect.read_flow_run(flow_run.id)).state
    assert state is not None
    assert (state.type, state.message) == (settled, f"watchdog: {reason}")


async def _history(prefect: PrefectClient, flow_run_id: UUID) -> list[tuple[str, str | None]]:
    states = await prefect.read_flow_run_states(flow_run_id)
    return [(state.name or "", state.message) for state in states]


async def test_a_scheduled_run_that_crashed_before_it_began_is_scheduled_again_and_runs_once(
    prefect: PrefectClient,
) -> None:
    pipeline_id = await _pipeline()
    flow_run = await _scheduled(prefect, pipeline_id)
    await _set(prefect, flow_run.id, Crashed(message=SIGTERM))  # the stack stopped

    assert await unclaimed.rescue_unclaimed() == [Rescued(str(flow_run.id), 1, True)]

    assert await _runs() == [_pending_run(1, pipeline_id, flow_run)]
    again = await prefect.read_flow_run(flow_run.id)
    assert again.state is not None
    assert (again.state.type, again.state.message, again.state.state_details.scheduled_time) == (
        StateType.SCHEDULED,
        SCHEDULED_AGAIN,
        flow_run.expected_start_time,
    )
    # another pass, or the reconciling one: nothing more happens to it
    assert await unclaimed.rescue_unclaimed() == []
    assert await watchdog.reconcile_once() == []
    assert (await prefect.read_flow_run(flow_run.id)).state == again.state
    # a worker takes it: its process claims the run made for it, no other
    ref = await claim_run(
        pipeline_id=pipeline_id,
        flow_run_id=str(flow_run.id),
        run_id=None,
        record_count=1000,
        scheduled=True,
    )
    assert ref == RunRef(pipeline_id=pipeline_id, run_id=1, record_count=1000)
    assert await _runs() == [_pending_run(1, pipeline_id, flow_run)]


@pytest.mark.parametrize("stop", ["pause", "remove", "replace"])
async def test_a_run_scheduled_again_whose_schedule_changes_before_it_begins_is_cancelled(
    prefect: PrefectClient, stop: str
) -> None:
    """Pausing, removing or replacing the schedule deleted the flow run scheduled again (it
    waits, never ran) and left its run pending, for the watchdog to fail: "its Prefect flow run
    no longer exists"."""
    pipeline_id = await _pipeline()
    flow_run = await _scheduled(prefect, pipeline_id)
    await _set(prefect, flow_run.id, Crashed(message=SIGTERM))
    assert await unclaimed.rescue_unclaimed() == [Rescued(str(flow_run.id), 1, True)]

    if stop == "pause":
        await set_pipeline_schedule_active(pipeline_id, False, record_count=1000)
    elif stop == "remove":
        await delete_pipeline_schedule(pipeline_id)
    else:  # Prefect deletes the future runs of a schedule it replaces
        hourly = IntervalSchedule(interval=timedelta(hours=1))
        await set_pipeline_schedule(
            pipeline_id=pipeline_id, record_count=1000, schedule=hourly, active=True
        )

    with pytest.raises(ObjectNotFound):
        await prefect.read_flow_run(flow_run.id)
    cancelled = "cancelled: its schedule was paused, removed or replaced before it began"
    assert await _runs() == [_ended_run(1, pipeline_id, flow_run, Status.CANCELLED, cancelled)]
    assert await watchdog.reconcile_once() == []  # nothing left for the watchdog


async def test_lost_flow_runs_past_the_first_page_of_a_read_are_scheduled_again_too(
    prefect: PrefectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass reads every page: Crashed runs that have their run fill pages too, and the lost
    ones past the first were never seen."""
    monkeypatch.setattr(orchestrator, "READ_LIMIT", 1)
    lost = []
    for _ in range(2):
        flow_run = await _scheduled(prefect, await _pipeline())
        await _set(prefect, flow_run.id, Crashed(message=SIGTERM))
        lost.append(flow_run)

    rescued = await unclaimed.rescue_unclaimed()

    assert sorted((r.flow_run_id, r.scheduled_again) for r in rescued) == sorted(
        (str(flow_run.id), True) for flow_run in lost
    )
    assert sorted(r.run_id for r in rescued) == [1, 2]


async def test_prefect_hanging_as_a_run_is_scheduled_again_ends_the_pass_having_written_nothing(
    prefect: PrefectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each lost run in turn held SQLite's write lock for PREFECT_WAIT: a hung Prefect ends the
    pass at the first (as Prefect unreachable ends every pass), not after each of 200."""
    for _ in range(2):
        flow_run = await _scheduled(prefect, await _pipeline())
        await _set(prefect, flow_run.id, Crashed(message=SIGTERM))
    tries = []

    async def hangs(flow_run_id: str, message: str, **_: Any) -> bool:
        tries.append(flow_run_id)
        await asyncio.sleep(60)
        return True

    monkeypatch.setattr(unclaimed.flow_run_fixes, "schedule_again", hangs)
    monkeypatch.setattr(unclaimed, "PREFECT_WAIT", 0.2)
    with pytest.raises(orchestrator.PrefectUnavailableError) as ended:
        await unclaimed.rescue_unclaimed()
    assert str(ended.value) == (
        f"Prefect did not answer within 0.2 s as flow run {tries[0]} was scheduled again; "
        "nothing was written, and the next pass tries again"
    )
    assert (len(tries), await _runs()) == (1, [])


async def test_one_that_crashes_again_before_it_begins_fails_and_is_not_scheduled_again(
    prefect: PrefectClient,
) -> None:
    pipeline_id = await _pipeline()
    flow_run = await _scheduled(prefect, pipeline_id)
    await _set(prefect, flow_run.id, Crashed(message=SIGTERM))
    assert await unclaimed.rescue_unclaimed() == [Rescued(str(flow_run.id), 1, True)]
    await _set(prefect, flow_run.id, Pending())
    await _set(prefect, flow_run.id, Crashed(message=SIGTERM))  # stopped as it started again

    assert await unclaimed.rescue_unclaimed() == []
    [verdict] = await watchdog.reconcile_once()

    reason = f"the worker or its flow-run process died (Prefect: Crashed ({SIGTERM}))"
    assert (verdict.run_id, verdict.status, verdict.reason) == (1, Status.FAILED, reason)
    run = await read_run(1)
    assert (run.status, run.error, run.prefect_flow_run_id) == (
        Status.FAILED,
        reason,
        str(flow_run.id),
    )
    assert [name for name, _ in await _history(prefect, flow_run.id)] == [
        "Scheduled",
        "Pending",
        "Crashed",
        "Scheduled",
        "Pending",
        "Crashed",
    ]


async def test_two_passes_at_once_schedule_it_again_once(prefect: PrefectClient) -> None:
    """Two API processes' watchdogs: the run is made by one, and Prefect told by that one."""
    pipeline_id = await _pipeline()
    flow_run = await _scheduled(prefect, pipeline_id)
    await _set(prefect, flow_run.id, Crashed(message=SIGTERM))

    passes = await asyncio.gather(unclaimed.rescue_unclaimed(), unclaimed.rescue_unclaimed())

    assert sorted(passes, key=len) == [[], [Rescued(str(flow_run.id), 1, True)]]
    assert await _runs() == [_pending_run(1, pipeline_id, flow_run)]
    assert await _history(prefect, flow_run.id) == [
        ("Scheduled", "Flow run scheduled"),
        ("Pending", None),
        ("Crashed", SIGTERM),
        ("Scheduled", SCHEDULED_AGAIN),
    ]


async def test_a_run_that_claimed_its_run_before_it_crashed_is_never_run_again(
    prefect: PrefectClient,
) -> None:
    pipeline_id = await _pipeline()
    flow_run = await _scheduled(prefect, pipeline_id)
    await _set(prefect, flow_run.id, Running(), force=True)  # its time came: Prefect waits till
    await claim_run(
        pipeline_id=pipeline_id,
        flow_run_id=str(flow_run.id),
        run_id=None,
        record_count=1000,
        scheduled=True,
    )
    await _set(prefect, flow_run.id, Crashed(message=SIGTERM))

    assert await unclaimed.rescue_unclaimed() == []

    state = (await prefect.read_flow_run(flow_run.id)).state
    assert state is not None and (state.type, state.message) == (StateType.CRASHED, SIGTERM)
    assert await _runs() == [_pending_run(1, pipeline_id, flow_run)]  # the watchdog judges it


async def test_crashed_runs_of_a_paused_schedule_or_of_another_database_are_left_alone(
    prefect: PrefectClient,
) -> None:
    """Pausing a schedule skips its runs missed (README); a flow run of pipeline 1 made before
    this database's pipeline 1 was another database's (a new SQLite file starts ids at 1)."""
    paused = await _pipeline()
    skipped = await _scheduled(prefect, paused)
    await _set(prefect, skipped.id, Crashed(message=SIGTERM))
    await set_pipeline_schedule_active(paused, False, record_count=1000)
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    other = await prefect.create_flow_run_from_deployment(
        deployment.id, parameters={"pipeline_id": 2, "record_count": 1000}
    )
    await _set(prefect, other.id, Pending())
    await _set(prefect, other.id, Crashed(message=SIGTERM))
    await _pipeline(created=timedelta(minutes=1))  # pipeline 2, after that flow run

    assert await unclaimed.rescue_unclaimed() == []

    assert await _runs() == []
    for left in (skipped, other):
        state = (await prefect.read_flow_run(left.id)).state
        assert state is not None and state.type == StateType.CRASHED


async def test_a_run_a_gone_worker_left_pending_gets_its_run_which_fails_saying_so(
    prefect: PrefectClient, setting: SetSetting
) -> None:
    """Its process may only be slow to start: not scheduled again (it could run beside it), but
    failed as a run Pending too long is (PIPELINE_PENDING_TIMEOUT_SECONDS), and cancelled."""
    setting("PIPELINE_PENDING_TIMEOUT_SECONDS", "2")
    pipeline_id = await _pipeline()
    since = time.monotonic()
    flow_run = await _scheduled(prefect, pipeline_id)  # its worker then killed outright

    assert await unclaimed.rescue_unclaimed() == []  # its process may yet claim a run
    await asyncio.sleep(3.5)  # past the 2 s by more than the clock offset's 1 s resolution
    assert await unclaimed.rescue_unclaimed() == [Rescued(str(flow_run.id), 1, False)]
    [verdict] = await watchdog.reconcile_once()

    never_started = (
        "no flow-run process started it (Pending in Prefect for {} s since a worker took it: its "
        "worker stopped, or the process it started failed before the run began; see the "
        "worker's log); trigger the pipeline again"
    )
    reason = never_started.format(shown_age(never_started, verdict.reason, age=2, since=since))
    assert (verdict.run_id, verdict.status, verdict.reason) == (1, Status.FAILED, reason)
    await _failed_and_settled(prefect, flow_run, pipeline_id, reason, StateType.CANCELLED)


async def test_a_run_left_running_before_it_claimed_its_run_gets_one_which_fails_saying_so(
    prefect: PrefectClient, setting: SetSetting
) -> None:
    """Its process was killed between Prefect's Running and its claim (SIGKILL: no Crashed)."""
    setting("PIPELINE_HEARTBEAT_SECONDS", "1")
    setting("PIPELINE_STALE_HEARTBEAT_SECONDS", "2")
    pipeline_id = await _pipeline()
    since = time.monotonic()
    flow_run = await _scheduled(prefect, pipeline_id)
    await _set(prefect, flow_run.id, Running(), force=True)

    assert await unclaimed.rescue_unclaimed() == []
    await asyncio.sleep(3.5)  # past the 2 s by more than the clock offset's 1 s resolution
    assert await unclaimed.rescue_unclaimed() == [Rescued(str(flow_run.id), 1, False)]
    [verdict] = await watchdog.reconcile_once()

    silent = (
        "its flow-run process stopped responding (no heartbeat for {} s; worker or process killed?)"
    )
    reason = silent.format(shown_age(silent, verdict.reason, age=2, since=since))
    assert (verdict.run_id, verdict.status, verdict.reason) == (1, Status.FAILED, reason)
    await _failed_and_settled(prefect, flow_run, pipeline_id, reason, StateType.CRASHED)
