"""One watchdog pass on a real database, with Prefect's answers given: a run a worker took and
never started, clocks of other machines, runs ended cancelled that Prefect still shows Cancelling.
Prefect's side (states, pool health, the state changes sent) is recorded, not served."""

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from prefect.client.schemas.objects import State, StateType
from prefect.states import Cancelled, Cancelling, Pending, Running
from sqlalchemy import select

from app import models
from app.db import get_engine, get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline import orchestrator, pool, watchdog
from app.pipeline.pool import PoolHealth
from app.pipeline.status import heartbeat, update_pipeline_status
from tests.support.rows import add_pipeline, add_run, read_run

FLOW_RUN = "5f0c9a3e-1b2d-4c5e-8f70-9a1b2c3d4e5f"
OLDER_FLOW_RUN = "0e1d2c3b-4a59-4867-9a5b-c4d3e2f1a0b9"
ALIVE = PoolHealth(
    pool_exists=True,
    pool_paused=False,
    pool_concurrency_limit=None,
    live_workers=["worker-1"],
    deployment_exists=True,
    deployment_pool="default",
)


@dataclass
class Prefect:
    """What Prefect answers this pass, and the state changes the watchdog sent it."""

    states: dict[str, State] = field(default_factory=dict)
    health: PoolHealth = ALIVE
    clock_offset: timedelta = timedelta(0)
    reads: list[list[str]] = field(default_factory=list)
    sent: list[tuple[str, str, Any]] = field(default_factory=list)

    async def read_flow_run_states(
        self, ids: list[str], *, types: list[StateType] | None = None
    ) -> dict[str, State]:
        self.reads.append(sorted(ids))
        return {
            i: self.states[i]
            for i in ids
            if i in self.states and (types is None or self.states[i].type in types)
        }

    async def pool_health(self) -> PoolHealth:
        return self.health

    async def prefect_clock_offset(self) -> timedelta:
        return self.clock_offset

    async def cancel(self, flow_run_id: str, message: str, *, still: Any = None) -> bool:
        self.sent.append(("cancelled", flow_run_id, still))
        return True

    async def crash(self, flow_run_id: str, message: str) -> None:
        self.sent.append(("crashed", flow_run_id, None))


@pytest.fixture
def prefect(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Prefect]:
    answers = Prefect()
    monkeypatch.setattr(orchestrator, "read_flow_run_states", answers.read_flow_run_states)
    monkeypatch.setattr(orchestrator, "cancel_stranded_flow_run", answers.cancel)
    monkeypatch.setattr(orchestrator, "mark_flow_run_crashed", answers.crash)
    monkeypatch.setattr(pool, "pool_health", answers.pool_health)
    # absent before these fixes: the pass then never asks for them
    monkeypatch.setattr(pool, "prefect_clock_offset", answers.prefect_clock_offset, raising=False)
    monkeypatch.setattr(watchdog, "worker_missing", lambda taking, timeout: not taking)
    yield answers


def _state(state: State, *, age: float, clock: datetime | None = None) -> State:
    """`state` as Prefect's server stamped it `age` s before `clock` (its now; default ours)."""
    state.timestamp = (clock or utcnow()) - timedelta(seconds=age)
    return state


async def _run(status: Status, *, age: float, flow_run: str = FLOW_RUN) -> int:
    pipeline_id = await add_pipeline("p")
    created_at = utcnow() - timedelta(seconds=age)
    return await add_run(
        pipeline_id, status, {}, prefect_flow_run_id=flow_run, created_at=created_at
    )


async def test_a_run_a_worker_took_and_never_started_fails_saying_so(prefect: Prefect) -> None:
    """The worker was stopped (SIGKILL) just after it proposed Pending: Prefect never offers a
    Pending run again, and the run stayed pending for PIPELINE_QUEUED_TIMEOUT_SECONDS (1 h)."""
    run_id = await _run(Status.PENDING, age=310)
    prefect.states[FLOW_RUN] = _state(Pending(name="Submitting"), age=301)

    [verdict] = await watchdog.reconcile_once()

    reason = (
        "the worker that took it stopped before starting it (Pending in Prefect for 301 s; its "
        "flow-run process never began); trigger the pipeline again"
    )
    assert (verdict.run_id, verdict.status, verdict.reason) == (run_id, Status.FAILED, reason)
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.FAILED, reason)
    # cancelled in Prefect only while still Pending: a process that began meanwhile is left be
    assert prefect.sent == [("cancelled", FLOW_RUN, StateType.PENDING)]


async def test_a_pending_run_is_aged_on_the_prefect_servers_clock(prefect: Prefect) -> None:
    """The server's clock is 10 min behind this one: its Pending, 10 s old, is no stranded run."""
    prefect.clock_offset = timedelta(minutes=-10)
    prefect.health = replace(ALIVE, prefect_clock_offset=prefect.clock_offset)
    server_now = utcnow() + prefect.clock_offset
    run_id = await _run(Status.PENDING, age=20)
    prefect.states[FLOW_RUN] = _state(Pending(), age=10, clock=server_now)

    assert await watchdog.reconcile_once() == []
    assert ((await read_run(run_id)).status, prefect.sent) == (Status.PENDING, [])


async def test_a_running_run_is_aged_on_the_clock_that_stamped_each_sign(
    prefect: Prefect,
) -> None:
    """Prefect's server is 2 min behind: the run it saw start 5 s ago (by its clock) was taken
    for one silent for 125 s, and failed."""
    offset = timedelta(minutes=-2)
    prefect.health = replace(ALIVE, prefect_clock_offset=offset)
    run_id = await _run(Status.RUNNING, age=200)
    prefect.states[FLOW_RUN] = _state(Running(), age=5, clock=utcnow() + offset)

    assert await watchdog.reconcile_once() == []
    assert ((await read_run(run_id)).status, prefect.sent) == (Status.RUNNING, [])


class _MinuteBehind(datetime):
    """The clock of a flow-run process's machine, a minute behind the API's and the database's."""

    @classmethod
    def now(cls, tz: Any = None) -> "_MinuteBehind":
        real = datetime.now(tz)
        return cls.fromtimestamp(real.timestamp() - 60, real.tzinfo)


async def test_a_heartbeat_from_a_machine_whose_clock_is_behind_is_a_heartbeat(
    prefect: Prefect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow-run process stamped its start and heartbeat with its own clock, a minute
    behind: the watchdog read a run that beat just now as silent for 40 s and failed it."""
    async with get_engine().connect() as connection:
        if connection.dialect.name != "postgresql":
            pytest.skip("needs PostgreSQL: on SQLite every writer is on the database's machine")
    run_id = await _run(Status.PENDING, age=100)
    pipeline_id = (await read_run(run_id)).pipeline_id
    with monkeypatch.context() as flow_run_machine:
        flow_run_machine.setattr(models, "datetime", _MinuteBehind)
        await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id)
        await heartbeat(run_id=run_id)
    prefect.states[FLOW_RUN] = _state(Running(), age=40)  # it began 40 s ago, by Prefect

    assert await watchdog.reconcile_once() == []
    run = await read_run(run_id)
    assert (run.status, prefect.sent) == (Status.RUNNING, [])


async def _ended_run(status: Status, *, ago: timedelta, flow_run: str = FLOW_RUN) -> None:
    """A run that ended `status` `ago` (its completed_at, on the database's clock)."""
    run_id = await _run(Status.RUNNING, age=300, flow_run=flow_run)
    pipeline_id = (await read_run(run_id)).pipeline_id
    await update_pipeline_status(pipeline_id, None, status, "ended", run_id=run_id)
    async with get_sessionmaker()() as session, session.begin():
        run = await session.scalar(select(PipelineRun).where(PipelineRun.id == run_id))
        assert run is not None and run.completed_at is not None
        run.completed_at -= ago


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, StateType, str, StateType]]:
    """What the pass told Prefect of runs ended lately: (flow run, as, message, while still)."""
    told: list[tuple[str, StateType, str, StateType]] = []

    async def settle_flow_run(
        flow_run_id: str, settled_as: StateType, message: str, *, still: StateType
    ) -> bool:
        told.append((flow_run_id, settled_as, message, still))
        return True

    monkeypatch.setattr(orchestrator, "settle_flow_run", settle_flow_run, raising=False)
    return told


async def test_a_cancel_its_worker_did_not_finish_is_finished_after_a_grace(
    prefect: Prefect, settled: list[tuple[str, StateType, str, StateType]]
) -> None:
    """The worker stopped within the ~3.4 s between the run's exit and its Cancelled: Prefect
    showed Cancelling for 5 min (until its own clean-up), the slot held."""
    await _ended_run(Status.CANCELLED, ago=timedelta(seconds=70))
    prefect.states[FLOW_RUN] = _state(Cancelling(), age=61)

    assert await watchdog.reconcile_once() == []
    assert settled == [
        (
            FLOW_RUN,
            StateType.CANCELLED,
            "watchdog: this service's run ended cancelled, and its worker or process stopped "
            "before telling Prefect (Cancelling for 61 s)",
            StateType.CANCELLING,
        )
    ]
    # within the grace its worker may still be stopping the process: left to it
    settled.clear()
    prefect.states[FLOW_RUN] = _state(Cancelling(), age=30)
    assert (await watchdog.reconcile_once(), settled) == ([], [])
    # already Cancelled: nothing to do
    prefect.states[FLOW_RUN] = _state(Cancelled(), age=61)
    assert (await watchdog.reconcile_once(), settled) == ([], [])


async def test_a_run_that_wrote_its_stop_and_was_killed_is_crashed_in_prefect(
    prefect: Prefect, settled: list[tuple[str, StateType, str, StateType]]
) -> None:
    """Its worker killed, the run's process wrote "stopped …" (its SIGTERM) and was SIGKILLed
    before telling Prefect: the row said failed, Prefect Running for good (seen live in 9 of 20
    runs killed 0-200 ms after their SIGTERM); the watchdog looks only at unfinished rows."""
    await _ended_run(Status.FAILED, ago=timedelta(seconds=90))
    prefect.states[FLOW_RUN] = _state(Running(), age=95)

    assert await watchdog.reconcile_once() == []
    assert settled == [
        (
            FLOW_RUN,
            StateType.CRASHED,
            "watchdog: this service's run ended failed, and its worker or process stopped "
            "before telling Prefect (Running for 95 s)",
            StateType.RUNNING,
        )
    ]


async def test_a_run_that_ended_within_the_grace_is_left_to_its_process(
    prefect: Prefect, settled: list[tuple[str, StateType, str, StateType]]
) -> None:
    """Prefect's state is old (the run started long ago) but the row ended 30 s ago: its process
    may still be telling Prefect."""
    await _ended_run(Status.COMPLETED, ago=timedelta(seconds=30))
    prefect.states[FLOW_RUN] = _state(Running(), age=95)
    assert (await watchdog.reconcile_once(), settled, prefect.reads) == ([], [], [])


async def test_only_runs_ended_lately_are_looked_up_and_none_costs_no_call(
    prefect: Prefect,
) -> None:
    assert await watchdog.reconcile_once() == []
    # earlier passes have settled it
    await _ended_run(Status.CANCELLED, ago=timedelta(minutes=6), flow_run=OLDER_FLOW_RUN)
    assert await watchdog.reconcile_once() == []
    assert prefect.reads == []
    await _ended_run(Status.FAILED, ago=timedelta(minutes=4))
    assert await watchdog.reconcile_once() == []
    assert prefect.reads == [[FLOW_RUN]]
