"""Prefect as one watchdog pass sees it, given rather than served: the states it answers, its
pool's health, and the state changes the pass sends it (recorded, or refused for a flow run)."""

import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from prefect.client.schemas.objects import State, StateType
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import STAGE_NAMES, PipelineRun, Status, utcnow
from app.pipeline import orchestrator, pool
from app.pipeline.pool import PoolHealth
from app.pipeline.reconcile import flow_run_fixes, settling, watchdog
from app.pipeline.reconcile.flow_run_fixes import Stranded
from app.pipeline.reconcile.isolated import Isolated
from app.pipeline.status import update_pipeline_status
from tests.support.rows import add_pipeline, add_run, done, read_run

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


Told = tuple[str, StateType, str, StateType, bool]


@dataclass
class Prefect:
    """What Prefect answers this pass, and the state changes the watchdog sent it."""

    states: dict[str, State] = field(default_factory=dict)
    health: PoolHealth = ALIVE
    clock_offset: timedelta = timedelta(0)
    reads: list[list[str]] = field(default_factory=list)
    sent: list[tuple[str, str, Any]] = field(default_factory=list)
    # flow run → what Prefect's side raises for any change of its state
    refusing: dict[str, Exception] = field(default_factory=dict)
    # what a stranded run's cancel comes to
    stranded: Stranded = Stranded.CANCELLED
    # the state types of each read, as filtered on the server
    read_types: list[list[StateType] | None] = field(default_factory=list)
    # the runs ended lately set in Prefect: (flow run, as, message, while still, forced)
    settled: list[Told] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(orchestrator, "read_flow_run_states", self.read_flow_run_states)
        monkeypatch.setattr(flow_run_fixes, "cancel_stranded_flow_run", self.cancel)
        monkeypatch.setattr(flow_run_fixes, "mark_flow_run_crashed", self.crash)
        monkeypatch.setattr(flow_run_fixes, "settle_flow_run", self.settle)
        monkeypatch.setattr(pool, "pool_health", self.pool_health)
        monkeypatch.setattr(pool, "prefect_clock_offset", self.prefect_clock_offset)
        monkeypatch.setattr(watchdog, "worker_missing", lambda taking, timeout: not taking)
        # what earlier tests' passes remember of failing runs (ids start at 1 in each test)
        monkeypatch.setattr(watchdog, "_judging", Isolated(watchdog.logger, "run"))
        monkeypatch.setattr(settling, "_settling", Isolated(settling.logger, "settling flow run"))

    async def read_flow_run_states(
        self, ids: list[str], *, types: list[StateType] | None = None
    ) -> dict[str, State]:
        self.reads.append(sorted(ids))
        self.read_types.append(types)
        return {
            i: self.states[i]
            for i in ids
            if i in self.states and (types is None or self.states[i].type in types)
        }

    async def pool_health(self) -> PoolHealth:
        return self.health

    async def prefect_clock_offset(self) -> timedelta:
        return self.clock_offset

    def _refuse(self, flow_run_id: str) -> None:
        if flow_run_id in self.refusing:
            raise self.refusing[flow_run_id]

    async def cancel(self, flow_run_id: str, message: str, *, still: Any = None) -> Stranded:
        self._refuse(flow_run_id)
        self.sent.append(("cancelled", flow_run_id, still))
        return self.stranded

    async def crash(self, flow_run_id: str, message: str) -> None:
        self._refuse(flow_run_id)
        self.sent.append(("crashed", flow_run_id, None))

    async def settle(
        self,
        flow_run_id: str,
        settled_as: StateType,
        message: str,
        *,
        still: StateType,
        force: bool = False,
    ) -> bool:
        self._refuse(flow_run_id)
        self.settled.append((flow_run_id, settled_as, message, still, force))
        return True


def stamped(state: State, *, age: float, clock: datetime | None = None) -> State:
    """`state` as Prefect's server stamped it `age` s before `clock` (its now; default ours)."""
    state.timestamp = (clock or utcnow()) - timedelta(seconds=age)
    return state


async def run_row(
    status: Status,
    *,
    age: float,
    flow_run: str = FLOW_RUN,
    stages: dict[str, dict[str, Any]] | None = None,
) -> int:
    """A run of a new pipeline, created `age` s ago, with this flow run (and these stages)."""
    pipeline_id = await add_pipeline("p")
    created_at = utcnow() - timedelta(seconds=age)
    return await add_run(
        pipeline_id, status, stages or {}, prefect_flow_run_id=flow_run, created_at=created_at
    )


async def ended_run(status: Status, *, ago: timedelta, flow_run: str = FLOW_RUN) -> int:
    """A run that ended `status` `ago` (its completed_at, on the database's clock); a completed
    one with its five stages completed (a run is completed only with them)."""
    stages = {name: done(1.0, 10, 10) for name in STAGE_NAMES} if status is Status.COMPLETED else {}
    run_id = await run_row(Status.RUNNING, age=300, flow_run=flow_run, stages=stages)
    pipeline_id = (await read_run(run_id)).pipeline_id
    await update_pipeline_status(pipeline_id, None, status, "ended", run_id=run_id)
    async with get_sessionmaker()() as session, session.begin():
        run = await session.scalar(select(PipelineRun).where(PipelineRun.id == run_id))
        assert run is not None and run.completed_at is not None
        run.completed_at -= ago
    return run_id


def shown_age(template: str, reason: str, *, age: int, since: float) -> int:
    """The age `reason` shows where `template` has {}: the rest of it exactly the template's, the
    age `age` s (how old the test made the rows and states) plus no more than the whole seconds
    elapsed since `since` (time.monotonic() before they were made), however loaded the machine."""
    shown = re.fullmatch(re.escape(template).replace(re.escape("{}"), r"(\d+)"), reason)
    assert shown is not None, reason
    elapsed = math.ceil(time.monotonic() - since)
    assert age <= int(shown.group(1)) <= age + elapsed, (reason, age, elapsed)
    return int(shown.group(1))
