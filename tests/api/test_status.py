"""update_pipeline_status and claim_run on a real database: the rows a flow run writes."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.db import get_engine, get_sessionmaker
from app.models import STAGE_NAMES, Pipeline, PipelineRun, PipelineStage, Status, utcnow
from app.pipeline.claim import (
    PipelineNotFoundError,
    RunCancelledError,
    RunSettledError,
    claim_run,
)
from app.pipeline.stage_rows import INTERRUPTED
from app.pipeline.status import (
    flow_run_key,
    new_stage_rows,
    run_id_from_tags,
    update_pipeline_status,
)
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL
from tests.support.blocked import lock_waits
from tests.support.rows import read_run


async def _pipeline_with_run() -> tuple[int, int]:
    async with get_sessionmaker()() as session:
        pipeline = Pipeline(name="p", record_count=10)
        run = PipelineRun(pipeline=pipeline, record_count=10, stages=new_stage_rows())
        session.add_all([pipeline, run])
        await session.commit()
        return pipeline.id, run.id


@pytest.mark.usefixtures("database")
async def test_stage_lifecycle_sets_timings_counts_and_run_status() -> None:
    pipeline_id, run_id = await _pipeline_with_run()
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id, attempt=1)
    run = await read_run(run_id)
    assert run.status == Status.RUNNING
    assert run.started_at == run.stages[0].started_at
    assert (run.stages[0].status, run.stages[0].attempts) == (Status.RUNNING, 1)

    await update_pipeline_status(
        pipeline_id,
        "generate",
        Status.COMPLETED,
        run_id=run_id,
        records_in=10,
        records_out=9,
        records_rejected=1,
    )
    stage = (await read_run(run_id)).stages[0]
    assert (stage.status, stage.records_in, stage.records_out, stage.records_rejected) == (
        Status.COMPLETED,
        10,
        9,
        1,
    )
    assert stage.completed_at is not None and stage.started_at is not None
    assert stage.duration_seconds == (stage.completed_at - stage.started_at).total_seconds()

    for name in ("ingest", "process", "transform", "export"):
        await update_pipeline_status(pipeline_id, name, Status.RUNNING, run_id=run_id)
        await update_pipeline_status(pipeline_id, name, Status.COMPLETED, run_id=run_id)
    await update_pipeline_status(
        pipeline_id, None, Status.COMPLETED, run_id=run_id, records_out=9, output_file="/o.parquet"
    )
    run = await read_run(run_id)
    assert (run.status, run.records_processed, run.output_file, run.error) == (
        Status.COMPLETED,
        9,
        "/o.parquet",
        None,
    )
    assert [s.status for s in run.stages] == [Status.COMPLETED] * 5


@pytest.mark.usefixtures("database")
async def test_a_run_is_completed_only_with_its_five_stages() -> None:
    """A run-level "completed" while stages had not finished made a completed run whose last
    four stages read "not run" (the watchdog judges such a run failed): it fails, saying which."""
    pipeline_id, run_id = await _pipeline_with_run()
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id)
    await update_pipeline_status(pipeline_id, "generate", Status.COMPLETED, run_id=run_id)
    await update_pipeline_status(pipeline_id, "ingest", Status.RUNNING, run_id=run_id)
    assert await update_pipeline_status(pipeline_id, None, Status.COMPLETED, run_id=run_id)
    run = await read_run(run_id)
    assert (run.status, run.error) == (
        Status.FAILED,
        "ended as completed while stages ['ingest', 'process', 'transform', 'export'] had not "
        "finished",
    )
    assert [(s.name, s.status, s.message) for s in run.stages] == [
        ("generate", Status.COMPLETED, None),
        ("ingest", Status.FAILED, INTERRUPTED),
        *[
            (name, Status.CANCELLED, "not run: an earlier stage failed")
            for name in ("process", "transform", "export")
        ],
    ]


@pytest.mark.usefixtures("database")
async def test_a_failed_stage_fails_the_run_and_cancels_the_rest() -> None:
    pipeline_id, run_id = await _pipeline_with_run()
    for stage in ("generate", "ingest"):
        await update_pipeline_status(pipeline_id, stage, Status.RUNNING, run_id=run_id)
        await update_pipeline_status(pipeline_id, stage, Status.COMPLETED, run_id=run_id)
    await update_pipeline_status(pipeline_id, "process", Status.RUNNING, run_id=run_id)
    await update_pipeline_status(
        pipeline_id, "process", Status.FAILED, error="ValueError: boom", run_id=run_id
    )
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.FAILED, "process: ValueError: boom")
    assert [(s.name, s.status) for s in run.stages] == [
        ("generate", Status.COMPLETED),
        ("ingest", Status.COMPLETED),
        ("process", Status.FAILED),
        ("transform", Status.CANCELLED),
        ("export", Status.CANCELLED),
    ]
    assert run.stages[3].message == "not run: an earlier stage failed"
    # a final run is never moved back
    await update_pipeline_status(pipeline_id, "transform", Status.RUNNING, run_id=run_id)
    assert (await read_run(run_id)).stages[3].status == Status.CANCELLED


@pytest.mark.usefixtures("database")
async def test_a_stage_running_when_its_run_failed_failed_with_it() -> None:
    """The watchdog fails a run whose process died mid-transform: transform was shown cancelled,
    "not run: an earlier stage failed", though it had started and no stage had failed."""
    pipeline_id, run_id = await _pipeline_with_run()
    for stage in ("generate", "ingest", "process"):
        await update_pipeline_status(pipeline_id, stage, Status.RUNNING, run_id=run_id)
        await update_pipeline_status(pipeline_id, stage, Status.COMPLETED, run_id=run_id)
    await update_pipeline_status(pipeline_id, "transform", Status.RUNNING, run_id=run_id)
    died = "the worker or its flow-run process died (Prefect: Crashed)"
    await update_pipeline_status(pipeline_id, None, Status.FAILED, error=died, run_id=run_id)
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.FAILED, died)
    transform, export = run.stages[3], run.stages[4]
    assert (transform.status, transform.message) == (
        Status.FAILED,
        "interrupted: the run failed while this stage ran (see the run's error)",
    )
    assert transform.completed_at is not None and transform.duration_seconds is not None
    assert (export.status, export.message) == (Status.CANCELLED, "not run: an earlier stage failed")


@pytest.mark.usefixtures("database")
async def test_the_stage_running_when_its_run_was_stopped_says_it_was_stopped() -> None:
    """A worker's stop (SIGTERM, a deploy) failed the run with its reason, and its running stage
    read "interrupted: … (see the run's error)" in the dashboard and the CLI, not the reason."""
    pipeline_id, run_id = await _pipeline_with_run()
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id)
    await update_pipeline_status(pipeline_id, "generate", Status.COMPLETED, run_id=run_id)
    await update_pipeline_status(pipeline_id, "ingest", Status.RUNNING, run_id=run_id)
    await update_pipeline_status(
        pipeline_id, None, Status.FAILED, error=STOPPED_WITHOUT_CANCEL, run_id=run_id
    )
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.FAILED, STOPPED_WITHOUT_CANCEL)
    assert [(s.name, s.status, s.message, s.error) for s in run.stages] == [
        ("generate", Status.COMPLETED, None, None),
        ("ingest", Status.FAILED, None, STOPPED_WITHOUT_CANCEL),
        *[
            (name, Status.CANCELLED, "not run: an earlier stage failed", None)
            for name in ("process", "transform", "export")
        ],
    ]
    ingest = run.stages[1]
    assert ingest.completed_at == run.completed_at and ingest.duration_seconds is not None


@pytest.mark.usefixtures("database")
async def test_stages_of_a_run_that_failed_between_them_do_not_blame_a_stage() -> None:
    """Stopped as its process started, or between two stages: no stage failed, yet the stages
    left read "not run: an earlier stage failed" (seen with workers stopped ~2 s after a trigger)."""
    pipeline_id, run_id = await _pipeline_with_run()
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id)
    await update_pipeline_status(pipeline_id, "generate", Status.COMPLETED, run_id=run_id)
    died = "the worker or its flow-run process died (Prefect: Crashed)"
    await update_pipeline_status(pipeline_id, None, Status.FAILED, error=died, run_id=run_id)
    run = await read_run(run_id)
    assert [(s.name, s.status, s.message) for s in run.stages] == [
        ("generate", Status.COMPLETED, None),
        *[
            (name, Status.CANCELLED, "not run: the run failed before it began")
            for name in ("ingest", "process", "transform", "export")
        ],
    ]


@pytest.mark.usefixtures("database")
async def test_claim_run_finds_the_tagged_run_or_creates_one() -> None:
    pipeline_id, run_id = await _pipeline_with_run()
    ref = await claim_run(
        pipeline_id=pipeline_id, flow_run_id="fr-1", run_id=run_id, record_count=10
    )
    assert (ref.run_id, ref.record_count) == (run_id, 10)
    assert (await read_run(run_id)).prefect_flow_run_id == "fr-1"

    started_elsewhere = await claim_run(
        pipeline_id=pipeline_id, flow_run_id="fr-2", run_id=None, record_count=7
    )
    assert started_elsewhere.run_id == run_id + 1
    run = await read_run(started_elsewhere.run_id)
    assert (run.record_count, run.prefect_flow_run_id) == (7, "fr-2")
    assert [s.name for s in run.stages] == list(STAGE_NAMES)

    with pytest.raises(PipelineNotFoundError, match="pipeline 999 does not exist"):
        await claim_run(pipeline_id=999, flow_run_id="fr-3", run_id=None, record_count=1)


@pytest.mark.usefixtures("database")
async def test_a_run_the_watchdog_settles_ends_when_it_ended_never_before_it_started() -> None:
    pipeline_id, run_id = await _pipeline_with_run()
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id)
    started = utcnow() - timedelta(minutes=60)  # found an hour after it crashed
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(
            update(PipelineRun).where(PipelineRun.id == run_id).values(started_at=started)
        )
        await session.execute(
            update(PipelineStage).where(PipelineStage.run_id == run_id).values(started_at=started)
        )
    crashed_at = started + timedelta(seconds=2)
    assert await update_pipeline_status(
        pipeline_id, None, Status.FAILED, error="crashed", run_id=run_id, ended_at=crashed_at
    )
    run = await read_run(run_id)
    assert (run.completed_at, run.duration_seconds) == (crashed_at, 2.0)
    assert (run.stages[0].status, run.stages[0].completed_at) == (Status.FAILED, crashed_at)

    other_pipeline, other_run = await _pipeline_with_run()
    await update_pipeline_status(other_pipeline, "generate", Status.RUNNING, run_id=other_run)
    began = (await read_run(other_run)).started_at
    assert began is not None
    await update_pipeline_status(
        other_pipeline,
        None,
        Status.CANCELLED,
        run_id=other_run,
        ended_at=began - timedelta(seconds=5),  # another machine's clock
    )
    assert ((await read_run(other_run)).duration_seconds) == 0.0

    # killed after its last heartbeat, while a stage that started since then ran
    third_pipeline, third_run = await _pipeline_with_run()
    await update_pipeline_status(third_pipeline, "generate", Status.RUNNING, run_id=third_run)
    await update_pipeline_status(third_pipeline, "generate", Status.COMPLETED, run_id=third_run)
    await update_pipeline_status(third_pipeline, "ingest", Status.RUNNING, run_id=third_run)
    run = await read_run(third_run)
    ingest_began = run.stages[1].started_at
    assert run.started_at is not None and ingest_began is not None
    await update_pipeline_status(
        third_pipeline,
        None,
        Status.FAILED,
        error="silent",
        run_id=third_run,
        ended_at=run.started_at,  # its last sign of life: no heartbeat yet
    )
    run = await read_run(third_run)
    assert (run.completed_at, run.stages[1].status, run.stages[1].completed_at) == (
        ingest_began,
        Status.FAILED,
        ingest_began,
    )
    assert run.stages[1].duration_seconds == 0.0


@pytest.mark.usefixtures("database")
async def test_a_run_that_ended_or_was_withdrawn_is_not_started_again() -> None:
    """The watchdog failed the run ("no worker") while a worker was taking its flow run, or the
    trigger answered 503 and deleted its row while Prefect had made the flow run after all."""
    pipeline_id, run_id = await _pipeline_with_run()
    assert await update_pipeline_status(
        pipeline_id, None, Status.FAILED, error="not started after 120 s", run_id=run_id
    )
    with pytest.raises(
        RunCancelledError,
        match=rf"^run {run_id} already ended failed \(not started after 120 s\); it does not "
        r"start again: trigger the pipeline for a new run$",
    ):
        await claim_run(pipeline_id=pipeline_id, flow_run_id="fr-1", run_id=run_id, record_count=10)
    run = await read_run(run_id)
    assert (run.status, run.error, run.prefect_flow_run_id) == (
        Status.FAILED,
        "not started after 120 s",
        None,
    )
    with pytest.raises(
        RunCancelledError,
        match=rf"^run {run_id + 7} does not exist: its trigger failed and withdrew it; "
        "trigger the pipeline again$",
    ):
        await claim_run(
            pipeline_id=pipeline_id, flow_run_id="fr-2", run_id=run_id + 7, record_count=10
        )
    with pytest.raises(RunCancelledError, match=rf"^run {run_id + 8} does not exist: its trigger"):
        await claim_run(  # POST /api/pipelines with trigger: the pipeline was withdrawn too
            pipeline_id=pipeline_id + 5, flow_run_id="fr-3", run_id=run_id + 8, record_count=10
        )
    async with get_sessionmaker()() as session:
        assert await session.scalar(select(func.count()).select_from(PipelineRun)) == 1


@pytest.mark.usefixtures("database")
async def test_a_flow_run_that_is_not_the_run_s_own_starts_nothing() -> None:
    """Another database's run of the same id on the same Prefect server (its tag says run N too):
    it took over run N, reset it to pending and ran it under its own flow run."""
    pipeline_id, run_id = await _pipeline_with_run()
    await claim_run(pipeline_id=pipeline_id, flow_run_id="fr-own", run_id=run_id, record_count=10)
    with pytest.raises(
        RunSettledError,
        match=rf"^flow run fr-old is not run {run_id}'s \(its flow run is fr-own\): a run "
        rf"{run_id} of another database on this Prefect server, or a copy; it starts nothing$",
    ):
        await claim_run(
            pipeline_id=pipeline_id, flow_run_id="fr-old", run_id=run_id, record_count=10
        )
    run = await read_run(run_id)
    assert (run.status, run.prefect_flow_run_id) == (Status.PENDING, "fr-own")
    own = flow_run_key(run_id, run.created_at)
    await claim_run(
        pipeline_id=pipeline_id, flow_run_id="fr-own", run_id=run_id, record_count=10, key=own
    )
    # before its trigger wrote the flow run's id: told apart by the key it was made with
    pipeline_id, run_id = await _pipeline_with_run()
    other = f"pipeline-run:{run_id}@2026-01-01T00:00:00.000000Z"
    with pytest.raises(RunSettledError, match=rf"\(it was made as {other}\)"):
        await claim_run(
            pipeline_id=pipeline_id, flow_run_id="fr-x", run_id=run_id, record_count=10, key=other
        )
    assert (await read_run(run_id)).prefect_flow_run_id is None


@pytest.mark.usefixtures("database")
async def test_two_final_statuses_at_once_one_wins_the_other_is_refused() -> None:
    """The flow's Completed and the API's cancel, both waiting behind a third writer: on SQLite
    (FOR UPDATE locks nothing there) both read "running" and the cancel overwrote the finished
    run. The holder lets go only once both are seen waiting for the lock
    (tests/support/blocked.py): writers that reached the database one after the other, after
    the holder's commit, would pass without the race."""

    pipeline_id, run_id = await _pipeline_with_run()
    for name in STAGE_NAMES:  # the flow's Completed comes once its five stages have
        await update_pipeline_status(pipeline_id, name, Status.RUNNING, run_id=run_id)
        await update_pipeline_status(pipeline_id, name, Status.COMPLETED, run_id=run_id)
    async with lock_waits() as waits, get_engine().connect() as holder:
        # holds the run's row (PostgreSQL), the file's lock (SQLite) until both wait behind it
        await holder.execute(
            update(PipelineRun).where(PipelineRun.id == run_id).values(heartbeat_at=None)
        )
        writers = asyncio.gather(
            update_pipeline_status(pipeline_id, None, Status.COMPLETED, run_id=run_id),
            update_pipeline_status(
                pipeline_id, None, Status.CANCELLED, "cancelled through the API", run_id=run_id
            ),
        )
        await waits.until_waiting(2, writers)
        await holder.commit()
        wrote = await writers
    final = (await read_run(run_id)).status
    assert sorted(wrote) == [False, True]
    assert final == (Status.COMPLETED if wrote[0] else Status.CANCELLED)


@pytest.mark.usefixtures("database")
async def test_a_run_cancelled_before_its_flow_run_claims_it_stays_cancelled() -> None:
    """The cancel won a race with the trigger: the flow run must start nothing."""
    pipeline_id, run_id = await _pipeline_with_run()
    assert await update_pipeline_status(
        pipeline_id, None, Status.CANCELLED, "cancelled through the API", run_id=run_id
    )
    with pytest.raises(
        RunCancelledError,
        match=rf"^run {run_id} was cancelled before its flow run started "
        r"\(cancelled through the API\)$",
    ):
        await claim_run(pipeline_id=pipeline_id, flow_run_id="fr-1", run_id=run_id, record_count=10)
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.CANCELLED, "cancelled through the API")
    assert [s.status for s in run.stages] == [Status.CANCELLED] * 5


@pytest.mark.usefixtures("database")
async def test_a_failure_prefect_will_retry_leaves_the_run_pending_not_failed() -> None:
    """PIPELINE_FLOW_RETRIES: a failed run would come back to life on the retry. Until the last
    attempt it is pending, saying why; the retry starts its stages afresh, counts and all."""
    pipeline_id, run_id = await _pipeline_with_run()
    ref = await claim_run(pipeline_id=pipeline_id, flow_run_id="fr", run_id=run_id, record_count=10)
    retrying = "attempt 1 of 2 failed; Prefect runs the flow again in 10 s"
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id, attempt=3)
    await update_pipeline_status(
        pipeline_id,
        "generate",
        Status.FAILED,
        run_id=run_id,
        records_in=10,
        error="OSError: disk full",
        retrying=retrying,
    )
    # the flow's own run-level write after it must not replace the stage's reason
    assert not await update_pipeline_status(
        pipeline_id,
        None,
        Status.PENDING,
        error="OSError: disk full",
        run_id=run_id,
        retrying=retrying,
    )
    run = await read_run(run_id)
    assert (run.status, run.error, run.completed_at) == (
        Status.PENDING,
        f"generate: OSError: disk full; {retrying}",
        None,
    )
    assert (run.stages[0].status, run.stages[0].records_in) == (Status.FAILED, 10)

    await claim_run(pipeline_id=pipeline_id, flow_run_id="fr", run_id=ref.run_id, record_count=10)
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.PENDING, None)
    assert [(s.status, s.error, s.records_in, s.attempts) for s in run.stages] == [
        (Status.PENDING, None, None, 0)  # attempts too: the last stage once showed 3 of them
    ] * 5
    await update_pipeline_status(pipeline_id, "generate", Status.RUNNING, run_id=run_id)
    await update_pipeline_status(
        pipeline_id, "generate", Status.FAILED, run_id=run_id, error="OSError: disk full"
    )
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.FAILED, "generate: OSError: disk full")


def test_run_id_from_tags() -> None:
    assert run_id_from_tags(["pipeline:3", "pipeline-run:17"]) == 17
    assert run_id_from_tags(["pipeline-run:x", "other"]) is None
