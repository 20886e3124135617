"""The watchdog's verdicts around a database outage: a silence the outage explains is not a dead
process, and a reason says only what is known (no I/O)."""

from datetime import UTC, datetime, timedelta

from prefect.states import Pending, Running

from app.models import PipelineRun, Status
from app.pipeline.reconcile.verdicts import DatabaseOutage, Verdict, judge
from app.pipeline.status import new_stage_rows

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def _run(*, heartbeat_age: float | None, started_age: float | None = 100) -> PipelineRun:
    return PipelineRun(
        id=7,
        pipeline_id=1,
        record_count=5,
        status=Status.RUNNING if started_age is not None else Status.PENDING,
        prefect_flow_run_id="fr",
        created_at=_ago(400),
        started_at=None if started_age is None else _ago(started_age),
        heartbeat_at=None if heartbeat_age is None else _ago(heartbeat_age),
        stages=new_stage_rows(),
    )


def _outage(began_age: float, ended_age: float) -> DatabaseOutage:
    return DatabaseOutage(began=_ago(began_age), ended=_ago(ended_age))


def test_a_heartbeat_silent_through_an_outage_is_aged_from_the_database_return() -> None:
    """The stale age is 30 s: 45 s without a beat, 25 of them with the database away and back 5 s
    ago, is a process that could not write, not a dead one."""
    running = Running(timestamp=_ago(100))
    run = _run(heartbeat_age=45)
    assert judge(run, running, now=NOW, live_workers=True, outage=_outage(30, 5)) is None
    assert judge(run, running, now=NOW, live_workers=True, outage=_outage(30, 29)) is None


def test_a_process_silent_long_after_the_return_fails_saying_the_database_was_away() -> None:
    running = Running(timestamp=_ago(100))
    verdict = judge(
        _run(heartbeat_age=80), running, now=NOW, live_workers=True, outage=_outage(70, 40)
    )
    assert verdict == Verdict(
        7,
        Status.FAILED,
        "its flow-run process stopped responding (no heartbeat for 80 s, 40 s since the database "
        "was reachable again after 30 s unreachable: it may have given up waiting for it "
        "(PIPELINE_DATABASE_RETRY_SECONDS; see the run's log), or its worker or process was "
        "killed)",
    )
    assert verdict.ended_at == _ago(80)  # its last sign, not the database's return


def test_an_outage_before_the_last_heartbeat_changes_nothing() -> None:
    running = Running(timestamp=_ago(100))
    assert judge(
        _run(heartbeat_age=45), running, now=NOW, live_workers=True, outage=_outage(90, 60)
    ) == Verdict(
        7,
        Status.FAILED,
        "its flow-run process stopped responding (no heartbeat for 45 s; worker or process "
        "killed?)",
    )


def test_a_silence_is_judged_only_over_the_time_the_watchdog_watched() -> None:
    """An API restarted during an outage (or another replica) never saw it: its watchdog failed
    a run 45 s silent, waiting out the database, as killed. It waits the stale age (30 s) from
    its own start first; then the silence is judged as ever."""
    running = Running(timestamp=_ago(100))
    run = _run(heartbeat_age=45)
    assert judge(run, running, now=NOW, live_workers=True, watched_since=_ago(10)) is None
    assert judge(run, running, now=NOW, live_workers=True, watched_since=_ago(31)) == Verdict(
        7,
        Status.FAILED,
        "its flow-run process stopped responding (no heartbeat for 45 s; worker or process "
        "killed?)",
    )


def test_a_run_left_pending_never_claims_its_process_never_began() -> None:
    """A process that failed before it told Prefect it runs (Prefect's server failing with its
    database) leaves the run Pending just as a worker killed before starting it does."""
    pending = Pending(timestamp=_ago(301))
    run = _run(heartbeat_age=None, started_age=None)
    assert judge(run, pending, now=NOW, live_workers=True) == Verdict(
        7,
        Status.FAILED,
        "no flow-run process started it (Pending in Prefect for 301 s since a worker took it: "
        "its worker stopped, or the process it started failed before the run began; see the "
        "worker's log); trigger the pipeline again",
    )
    assert judge(run, pending, now=NOW, live_workers=True, outage=_outage(290, 270)) == Verdict(
        7,
        Status.FAILED,
        "no flow-run process started it (Pending in Prefect for 301 s since a worker took it: "
        "the database was unreachable for 20 s meanwhile, which fails a process as it starts; or "
        "its worker stopped; see the worker's log); trigger the pipeline again",
    )
    # an outage before the worker took it explains nothing
    assert judge(run, pending, now=NOW, live_workers=True, outage=_outage(400, 350)) == Verdict(
        7,
        Status.FAILED,
        "no flow-run process started it (Pending in Prefect for 301 s since a worker took it: "
        "its worker stopped, or the process it started failed before the run began; see the "
        "worker's log); trigger the pipeline again",
    )
