"""One watchdog pass on a real database, with Prefect's answers given: a run a worker took and
never started, clocks of other machines, runs ended cancelled that Prefect still shows Cancelling.
Prefect's side (states, pool health, the state changes sent) is recorded, not served."""

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelled, Cancelling, Pending, Running

from app import models
from app.db import get_engine
from app.models import Status, utcnow
from app.pipeline.reconcile import watchdog
from app.pipeline.status import heartbeat, update_pipeline_status
from tests.support.rows import read_run
from tests.support.watchdog_prefect import (
    ALIVE,
    FLOW_RUN,
    OLDER_FLOW_RUN,
    Prefect,
    Told,
    ended_run,
    run_row,
    shown_age,
    stamped,
)


@pytest.fixture
def prefect(database: str, monkeypatch: pytest.MonkeyPatch) -> Prefect:
    answers = Prefect()
    answers.install(monkeypatch)
    return answers


async def test_a_run_a_worker_took_and_never_started_fails_saying_so(prefect: Prefect) -> None:
    """The worker was stopped (SIGKILL) just after it proposed Pending: Prefect never offers a
    Pending run again, and the run stayed pending for PIPELINE_QUEUED_TIMEOUT_SECONDS (1 h)."""
    since = time.monotonic()
    run_id = await run_row(Status.PENDING, age=310)
    prefect.states[FLOW_RUN] = stamped(Pending(name="Submitting"), age=301)

    [verdict] = await watchdog.reconcile_once()

    never_started = (
        "no flow-run process started it (Pending in Prefect for {} s since a worker took it: its "
        "worker stopped, or the process it started failed before the run began; see the "
        "worker's log); trigger the pipeline again"
    )
    reason = never_started.format(shown_age(never_started, verdict.reason, age=301, since=since))
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
    run_id = await run_row(Status.PENDING, age=20)
    prefect.states[FLOW_RUN] = stamped(Pending(), age=10, clock=server_now)

    assert await watchdog.reconcile_once() == []
    assert ((await read_run(run_id)).status, prefect.sent) == (Status.PENDING, [])


async def test_a_running_run_is_aged_on_the_clock_that_stamped_each_sign(
    prefect: Prefect,
) -> None:
    """Prefect's server is 2 min behind: the run it saw start 5 s ago (by its clock) was taken
    for one silent for 125 s, and failed."""
    offset = timedelta(minutes=-2)
    prefect.health = replace(ALIVE, prefect_clock_offset=offset)
    run_id = await run_row(Status.RUNNING, age=200)
    prefect.states[FLOW_RUN] = stamped(Running(), age=5, clock=utcnow() + offset)

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
    run_id = await run_row(Status.PENDING, age=100)
    pipeline_id = (await read_run(run_id)).pipeline_id
    with monkeypatch.context() as flow_run_machine:
        flow_run_machine.setattr(models, "datetime", _MinuteBehind)
        await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id)
        await heartbeat(run_id=run_id)
    prefect.states[FLOW_RUN] = stamped(Running(), age=40)  # it began 40 s ago, by Prefect

    assert await watchdog.reconcile_once() == []
    run = await read_run(run_id)
    assert (run.status, prefect.sent) == (Status.RUNNING, [])


@pytest.fixture
def settled(prefect: Prefect) -> list[Told]:
    """What the pass told Prefect of runs ended lately: (flow run, as, message, while still,
    forced)."""
    return prefect.settled


async def test_a_cancel_its_worker_did_not_finish_is_finished_after_a_grace(
    prefect: Prefect, settled: list[Told], caplog: pytest.LogCaptureFixture
) -> None:
    """The worker stopped within the ~3.4 s between the run's exit and its Cancelled: Prefect
    showed Cancelling for 5 min (until its own clean-up), the slot held. The log line said
    "watchdog: flow run … watchdog: this service's run …"."""
    since = time.monotonic()
    await ended_run(Status.CANCELLED, ago=timedelta(seconds=70))
    prefect.states[FLOW_RUN] = stamped(Cancelling(), age=61)

    with caplog.at_level(logging.WARNING, logger="app.pipeline.reconcile.settling"):
        assert await watchdog.reconcile_once() == []
    told = (
        "watchdog: this service's run ended cancelled, and its worker or process stopped "
        "before telling Prefect (Cancelling for {} s)"
    )
    message = told.format(shown_age(told, settled[0][2], age=61, since=since) if settled else 61)
    assert settled == [
        (FLOW_RUN, StateType.CANCELLED, message, StateType.CANCELLING, False),
    ]
    said = message.removeprefix("watchdog: ")
    assert [r.getMessage() for r in caplog.records if r.name.endswith("settling")] == [
        f"watchdog: flow run {FLOW_RUN} set CANCELLED: {said}"
    ]
    # within the grace its worker may still be stopping the process: left to it
    settled.clear()
    prefect.states[FLOW_RUN] = stamped(Cancelling(), age=30)
    assert (await watchdog.reconcile_once(), settled) == ([], [])
    # already Cancelled: nothing to do
    prefect.states[FLOW_RUN] = stamped(Cancelled(), age=61)
    assert (await watchdog.reconcile_once(), settled) == ([], [])


async def test_a_run_that_wrote_its_stop_and_was_killed_is_crashed_in_prefect(
    prefect: Prefect, settled: list[Told]
) -> None:
    """Its worker killed, the run's process wrote "stopped …" (its SIGTERM) and was SIGKILLed
    before telling Prefect: the row said failed, Prefect Running for good (seen live in 9 of 20
    runs killed 0-200 ms after their SIGTERM); the watchdog looks only at unfinished rows."""
    since = time.monotonic()
    await ended_run(Status.FAILED, ago=timedelta(seconds=90))
    prefect.states[FLOW_RUN] = stamped(Running(), age=95)

    assert await watchdog.reconcile_once() == []
    told = (
        "watchdog: this service's run ended failed, and its worker or process stopped "
        "before telling Prefect (Running for {} s)"
    )
    message = told.format(shown_age(told, settled[0][2], age=95, since=since) if settled else 95)
    assert settled == [(FLOW_RUN, StateType.CRASHED, message, StateType.RUNNING, False)]


async def test_a_run_that_ended_within_the_grace_is_left_to_its_process(
    prefect: Prefect, settled: list[Told]
) -> None:
    """Prefect's state is old (the run started long ago) but the row ended 30 s ago: its process
    may still be telling Prefect."""
    await ended_run(Status.COMPLETED, ago=timedelta(seconds=30))
    prefect.states[FLOW_RUN] = stamped(Running(), age=95)
    assert (await watchdog.reconcile_once(), settled, prefect.reads) == ([], [], [])


async def test_only_runs_ended_lately_are_looked_up_and_none_costs_no_call(
    prefect: Prefect,
) -> None:
    assert await watchdog.reconcile_once() == []
    # earlier passes have settled it
    await ended_run(Status.CANCELLED, ago=timedelta(minutes=6), flow_run=OLDER_FLOW_RUN)
    assert await watchdog.reconcile_once() == []
    assert prefect.reads == []
    await ended_run(Status.FAILED, ago=timedelta(minutes=4))
    assert await watchdog.reconcile_once() == []
    assert prefect.reads == [[FLOW_RUN]]
