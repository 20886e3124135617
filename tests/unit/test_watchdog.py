"""The watchdog's verdicts for each way Prefect can leave a run behind, and how often its loop
sweeps the run directories (no I/O)."""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from prefect.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Late,
    Pending,
    Running,
    Scheduled,
)

from app.models import PipelineRun, Status
from app.pipeline import orchestrator
from app.pipeline.orchestrator import trigger_deadline
from app.pipeline.reconcile import retention, unclaimed, watchdog
from app.pipeline.reconcile.prefect_reach import PrefectReach
from app.pipeline.reconcile.verdicts import Verdict, judge
from app.pipeline.reconcile.watchdog import Watchdog
from app.pipeline.status import new_stage_rows

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FIX = (
    "no worker is taking runs from pool 'default' — start one (prefect worker start --pool "
    "default --type process), resume the pool if paused, or raise its concurrency limit"
)


def _run(
    *, age: float = 10, heartbeat_age: float | None = None, flow_run: bool = True
) -> PipelineRun:
    run = PipelineRun(
        id=7,
        pipeline_id=1,
        record_count=5,
        status=Status.RUNNING,
        prefect_flow_run_id="fr" if flow_run else None,
        created_at=NOW - timedelta(seconds=age),
        started_at=NOW - timedelta(seconds=age),
        heartbeat_at=None if heartbeat_age is None else NOW - timedelta(seconds=heartbeat_age),
        stages=new_stage_rows(),
    )
    return run


def test_crashed_failed_cancelled_mirror_prefect() -> None:
    assert judge(_run(), Crashed(message="exit code -9"), now=NOW, live_workers=True) == Verdict(
        7,
        Status.FAILED,
        "the worker or its flow-run process died (Prefect: Crashed (exit code -9))",
    )
    assert judge(_run(), Failed(), now=NOW, live_workers=True) == Verdict(
        7, Status.FAILED, "the Prefect flow run failed"
    )
    assert judge(_run(), Cancelled(), now=NOW, live_workers=True) == Verdict(
        7, Status.CANCELLED, "cancelled in Prefect"
    )


def test_a_verdict_dates_the_end_when_it_happened_not_when_the_watchdog_came_by() -> None:
    """A run Prefect finished while the API was down for an hour lasted an hour longer."""
    crashed_at, beat_at = NOW - timedelta(minutes=60), NOW - timedelta(seconds=45)
    ended = [
        judge(_run(age=4000), state, now=NOW, live_workers=True)
        for state in (
            Crashed(timestamp=crashed_at),
            Completed(timestamp=crashed_at),
            Cancelled(timestamp=crashed_at),
        )
    ]
    assert [verdict.ended_at if verdict else None for verdict in ended] == [crashed_at] * 3
    running = Running(timestamp=NOW - timedelta(seconds=100))
    silent = judge(_run(age=100, heartbeat_age=45), running, now=NOW, live_workers=True)
    assert silent is not None and silent.ended_at == beat_at
    never_started = judge(_run(age=400), Scheduled(), now=NOW, live_workers=False)
    assert never_started is not None and never_started.ended_at is None


def test_completed_in_prefect_needs_every_stage_completed() -> None:
    run = _run()
    assert judge(run, Completed(), now=NOW, live_workers=True) == Verdict(
        7,
        Status.FAILED,
        "Prefect reports completed but stages ['generate', 'ingest', 'process', 'transform', "
        "'export'] did not finish",
    )
    for stage in run.stages:
        stage.status = Status.COMPLETED
    assert judge(run, Completed(), now=NOW, live_workers=True) == Verdict(
        7, Status.COMPLETED, "completed in Prefect"
    )


def test_running_without_heartbeat_is_a_dead_process() -> None:
    running_since = Running(timestamp=NOW - timedelta(seconds=50))
    assert judge(_run(heartbeat_age=5), running_since, now=NOW, live_workers=True) is None
    slow_start = Running(timestamp=NOW - timedelta(seconds=20))  # queued long, started lately
    assert judge(_run(age=300), slow_start, now=NOW, live_workers=True) is None
    assert judge(
        _run(age=100, heartbeat_age=45), running_since, now=NOW, live_workers=True
    ) == Verdict(
        7,
        Status.FAILED,
        "its flow-run process stopped responding (no heartbeat for 45 s; worker or process "
        "killed?)",
    )


def test_waiting_runs_fail_only_without_a_worker_or_after_the_queue_timeout() -> None:
    assert judge(_run(age=500), Late(), now=NOW, live_workers=True) is None
    assert judge(_run(age=60), Scheduled(), now=NOW, live_workers=False) is None
    assert judge(_run(age=130), Late(), now=NOW, live_workers=False) == Verdict(
        7, Status.FAILED, f"not started after 130 s in Prefect state Late: {FIX}"
    )
    assert judge(_run(age=3700), Scheduled(), now=NOW, live_workers=True) == Verdict(
        7, Status.FAILED, f"not started after 3700 s in Prefect state Scheduled: {FIX}"
    )


def _pending(seconds: float) -> Pending:
    """Pending (a worker took it) since `seconds` ago, as Prefect's server stamped it."""
    return Pending(timestamp=NOW - timedelta(seconds=seconds))


def test_a_run_a_worker_took_is_stranded_once_its_start_takes_too_long() -> None:
    """A worker proposed Pending and was killed before the run's process began: Prefect never
    offers the run again. Judged from the Pending (a queued hour is not the start's), by
    PIPELINE_PENDING_TIMEOUT_SECONDS (300 s; cold starts in a burst took up to 74 s here), or by
    the no-worker timeout (120 s) once no worker is left to be starting it."""
    stranded = (
        "no flow-run process started it (Pending in Prefect for {} s since a worker took it: its "
        "worker stopped, or the process it started failed before the run began; see the "
        "worker's log); trigger the pipeline again"
    )
    queued_an_hour = _run(age=3700)
    assert judge(queued_an_hour, _pending(299), now=NOW, live_workers=True) is None
    assert judge(queued_an_hour, _pending(301), now=NOW, live_workers=True) == Verdict(
        7, Status.FAILED, stranded.format(301)
    )
    assert judge(_run(age=200), _pending(119), now=NOW, live_workers=False) is None
    assert judge(_run(age=200), _pending(121), now=NOW, live_workers=False) == Verdict(
        7, Status.FAILED, stranded.format(121)
    )
    # a sign of life within the bound, on the database's clock: its process is there
    beating = _run(age=3700, heartbeat_age=10)
    assert judge(beating, _pending(400), now=NOW, live_workers=True) is None


def test_a_run_waiting_for_a_flow_retry_waits_from_its_failed_attempt() -> None:
    """An hour-long run whose attempt failed is not a run that waited an hour in the queue."""
    retrying = AwaitingRetry(scheduled_time=NOW + timedelta(seconds=10))
    retrying.timestamp = NOW - timedelta(seconds=5)
    assert judge(_run(age=7200), retrying, now=NOW, live_workers=True) is None
    retrying.timestamp = NOW - timedelta(seconds=130)
    assert judge(_run(age=7200), retrying, now=NOW, live_workers=False) == Verdict(
        7, Status.FAILED, f"not started after 130 s in Prefect state AwaitingRetry: {FIX}"
    )


def test_runs_lost_on_the_way_to_prefect() -> None:
    # 6 attempts of 10 s each, and the client's back-off of 2 + 4 + 8 + 16 + 32 s (+20% jitter)
    assert trigger_deadline() == timedelta(seconds=6 * 10 + 62 * 1.2)
    assert judge(_run(flow_run=False, age=134), None, now=NOW, live_workers=True) is None
    assert judge(_run(flow_run=False, age=135), None, now=NOW, live_workers=True) == Verdict(
        7, Status.FAILED, "the trigger never reached Prefect"
    )
    assert judge(_run(), None, now=NOW, live_workers=True) == Verdict(
        7, Status.FAILED, "its Prefect flow run no longer exists"
    )


def test_no_worker_is_said_only_after_watching_for_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An API that just started (before its workers, or after a long stop) does not fail the
    runs a worker starting beside it is about to take; nor does a worker's restart (a deploy:
    the stopped worker leaves the live ones at once, its successor beats seconds later)."""
    monkeypatch.setattr(watchdog, "_last_taking", time.monotonic())
    assert watchdog.worker_missing(False, 120) is False
    monkeypatch.setattr(watchdog, "_last_taking", time.monotonic() - 121)
    assert (watchdog.worker_missing(False, 120), watchdog.worker_missing(True, 120)) == (
        True,
        False,
    )
    assert watchdog.worker_missing(False, 120) is False  # a worker took runs a moment ago


async def test_the_loop_reconciles_every_interval_and_sweeps_at_most_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"reconcile": 0, "sweep": 0, "unclaimed": 0}
    twenty_passes = asyncio.Event()

    async def count(name: str) -> None:
        calls[name] += 1
        if calls["reconcile"] == 20:
            twenty_passes.set()

    monkeypatch.setattr(watchdog, "reconcile_once", lambda: count("reconcile"))
    monkeypatch.setattr(retention, "sweep_runs", lambda: count("sweep"))
    monkeypatch.setattr(unclaimed, "rescue_unclaimed", lambda: count("unclaimed"))
    loop = Watchdog(timedelta(seconds=0.01))
    loop.start()
    await asyncio.wait_for(twenty_passes.wait(), timeout=10)
    await loop.stop()
    # the first pass sweeps, and gives flow runs without a run theirs; the next is a minute later
    assert (calls["sweep"], calls["unclaimed"]) == (1, 1)


async def test_a_sweep_the_database_did_not_answer_logs_no_traceback_and_comes_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """It logged "retention pass failed" with a traceback on every outage, and waited a minute
    for the next sweep; the outage is said once by the reconcile pass (DatabaseReach)."""
    sweeps = 0
    three_sweeps = asyncio.Event()

    async def reconcile() -> None:
        pass

    async def sweep() -> None:
        nonlocal sweeps
        sweeps += 1
        if sweeps == 3:
            three_sweeps.set()
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(watchdog, "reconcile_once", reconcile)
    monkeypatch.setattr(retention, "sweep_runs", sweep)
    monkeypatch.setattr(unclaimed, "rescue_unclaimed", reconcile)
    loop = Watchdog(timedelta(seconds=0.01))
    with caplog.at_level(logging.WARNING):
        loop.start()
        await asyncio.wait_for(three_sweeps.wait(), timeout=10)
        await loop.stop()
    assert [record.getMessage() for record in caplog.records] == []


async def test_flow_runs_without_a_run_are_looked_for_again_next_pass_while_prefect_starts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stack starts its API beside its Prefect server: the first pass's look at Prefect's flow
    runs failed, was warned of ("Start the server"), and waited a minute for the next."""
    looks = 0
    found = asyncio.Event()

    async def reconcile() -> None:
        pass

    async def rescue() -> list[unclaimed.Rescued]:
        nonlocal looks
        looks += 1
        if looks < 3:
            raise orchestrator.PrefectUnavailableError("Prefect API at … is unreachable")
        found.set()
        return []

    monkeypatch.setattr(watchdog, "prefect_reach", PrefectReach())
    monkeypatch.setattr(watchdog, "reconcile_once", reconcile)
    monkeypatch.setattr(retention, "sweep_runs", reconcile)
    monkeypatch.setattr(unclaimed, "rescue_unclaimed", rescue)
    loop = Watchdog(timedelta(seconds=0.01))
    with caplog.at_level(logging.INFO):
        loop.start()
        await asyncio.wait_for(found.wait(), timeout=10)
        await asyncio.sleep(0.1)  # ten passes more: the next look is a minute away
        await loop.stop()
    assert (looks, [record.getMessage() for record in caplog.records]) == (3, [])
