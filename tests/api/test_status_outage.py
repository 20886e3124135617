"""A flow run's writes while PostgreSQL restarts, on a cluster of this module's own: each waits
for the database (PIPELINE_DATABASE_RETRY_SECONDS) and lands once it is back; the watchdog
remembers the outage; nothing claims a run was deleted when the database merely did not answer."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.models import STAGE_NAMES, Status
from app.pipeline import status as status_module
from app.pipeline import telemetry, transient
from app.pipeline.claim import claim_run
from app.pipeline.reconcile import watchdog
from app.pipeline.status import heartbeat, update_pipeline_status
from app.pipeline.store import RunFiles, remove_if_deleted
from tests.conftest import SetSetting, migrate, use_settings
from tests.support.postgres import PostgresCluster, create_database, own_cluster
from tests.support.rows import add_pipeline, add_run, done, read_run

FLOW_RUN = "0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10"
DOWN_SECONDS = 2.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this module's own, so stopping it disturbs nothing else."""
    with own_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def outage_url(cluster: PostgresCluster) -> str:
    url = create_database(cluster.url, "status_outage")
    migrate(url)
    return url


@pytest.fixture
async def flow_run_database(outage_url: str, cluster: PostgresCluster) -> AsyncIterator[None]:
    """The module's database, as a flow run writes to it (patient: writes wait out an outage)."""
    saved = transient.patient.set(True)
    await use_settings(DATABASE_URL=outage_url)
    yield
    transient.patient.reset(saved)
    if not (cluster.data / "postmaster.pid").exists():  # a test that failed with it stopped
        await asyncio.to_thread(cluster.start)


async def _back_after(cluster: PostgresCluster, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await asyncio.to_thread(cluster.start)


async def _run_row(
    status: Status = Status.RUNNING, *, done_but: str | None = None
) -> tuple[int, int]:
    """A run; with `done_but`, its stages other than that one completed (a run is completed only
    with its five stages)."""
    pipeline_id = await add_pipeline("outlasts")
    stages = {name: done(1.0, 10, 10) for name in STAGE_NAMES if done_but and name != done_but}
    return pipeline_id, await add_run(pipeline_id, status, stages)


@pytest.mark.usefixtures("flow_run_database")
async def test_a_stage_and_run_write_wait_for_the_database_to_come_back(
    cluster: PostgresCluster,
) -> None:
    pipeline_id, run_id = await _run_row(done_but="generate")
    cluster.stop()
    back = asyncio.create_task(_back_after(cluster, DOWN_SECONDS))
    assert await update_pipeline_status(
        pipeline_id, "generate", Status.COMPLETED, run_id=run_id, records_out=10
    )
    await back
    assert await update_pipeline_status(pipeline_id, None, Status.COMPLETED, run_id=run_id)
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.COMPLETED, None)
    generate = run.stages[0]
    assert (generate.name, generate.status, generate.records_out) == (
        "generate",
        Status.COMPLETED,
        10,
    )


@pytest.mark.usefixtures("flow_run_database")
async def test_a_heartbeat_and_a_claim_wait_for_the_database(cluster: PostgresCluster) -> None:
    pipeline_id, run_id = await _run_row(Status.PENDING)
    cluster.stop()
    back = asyncio.create_task(_back_after(cluster, DOWN_SECONDS))
    ref = await claim_run(
        pipeline_id=pipeline_id, flow_run_id=FLOW_RUN, run_id=run_id, record_count=1000
    )
    await back
    assert (ref.pipeline_id, ref.run_id) == (pipeline_id, run_id)
    cluster.stop()
    back = asyncio.create_task(_back_after(cluster, DOWN_SECONDS))
    await heartbeat(run_id=run_id)
    await back
    run = await read_run(run_id)
    assert (run.prefect_flow_run_id, run.heartbeat_at is not None) == (FLOW_RUN, True)


@pytest.mark.usefixtures("flow_run_database")
async def test_an_unanswered_check_never_says_the_run_was_deleted(
    cluster: PostgresCluster,
    setting: SetSetting,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setting("PIPELINE_DATABASE_RETRY_SECONDS", "0.5")
    _, run_id = await _run_row()
    files = RunFiles(tmp_path / str(run_id))
    files.root.mkdir()
    cluster.stop()
    caplog.set_level(logging.WARNING, logger="app.pipeline.store")
    assert await remove_if_deleted(files, run_id) is False
    assert files.root.is_dir()  # not known to be deleted: kept
    assert [r.getMessage() for r in caplog.records if r.name == "app.pipeline.store"] == [
        f"run {run_id}: could not check whether it was deleted (the database was unreachable "
        "for 0.5 s (PIPELINE_DATABASE_RETRY_SECONDS) while this run's process tried checking "
        f"whether run {run_id} was deleted: ConnectionRefusedError: [Errno 111] Connect call "
        f"failed ('127.0.0.1', {cluster.port}))"
    ]


async def test_the_watchdog_remembers_the_outage_it_saw(
    cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its pass fails while the database is away, and the first pass that reads it again dates
    the outage: the moment from which it ages the runs' silence."""
    # no runs: Prefect is never asked
    empty = await asyncio.to_thread(create_database, cluster.url, "watchdog_outage")
    await asyncio.to_thread(migrate, empty)
    await use_settings(DATABASE_URL=empty)
    monkeypatch.setattr(watchdog, "database_reach", watchdog.DatabaseReach())
    cluster.stop()
    try:
        with pytest.raises(ConnectionRefusedError):
            await watchdog.reconcile_once()
        down_since = watchdog.database_reach.down_since
        assert down_since is not None
        assert watchdog.database_reach.last is None
    finally:
        await asyncio.to_thread(cluster.start)
    assert await watchdog.reconcile_once() == []
    outage = watchdog.database_reach.last
    assert outage is not None
    assert (outage.began, watchdog.database_reach.down_since) == (down_since, None)
    assert outage.ended > outage.began


@pytest.mark.parametrize(
    ("stage", "status", "error", "counted"),
    [
        (None, Status.COMPLETED, None, "completed"),
        ("transform", Status.FAILED, "boom", "failed"),
    ],
)
@pytest.mark.usefixtures("flow_run_database")
async def test_a_final_write_whose_answer_was_lost_is_counted_once(
    monkeypatch: pytest.MonkeyPatch,
    stage: str | None,
    status: Status,
    error: str | None,
    counted: str,
) -> None:
    """The connection drops after the commit landed: the retry finds the run ended as it wrote
    it, and counts that end (it answered False, and the run went uncounted); a retried write
    that finds the run ended otherwise still answers False, uncounted."""
    ended: list[str] = []
    monkeypatch.setattr(telemetry, "run_ended", lambda final, seconds=None: ended.append(final))
    real_retried = transient.retried

    async def answer_lost_once(operation: Any, *, what: str) -> Any:
        lost = iter([True])

        async def once_lost() -> Any:
            result = await operation()
            if next(lost, False):
                raise ConnectionResetError(104, "Connection reset by peer")  # after the commit
            return result

        return await real_retried(once_lost, what=what)

    monkeypatch.setattr(status_module, "retried", answer_lost_once)
    pipeline_id, run_id = await _run_row(done_but=stage or "none")
    assert await update_pipeline_status(pipeline_id, stage, status, run_id=run_id, error=error)
    assert ended == [counted]
    run = await read_run(run_id)
    assert (run.status, run.error) == (status, f"{stage}: {error}" if stage else None)

    # the same lost answer, for a write that found the run ended by the one before
    assert not await update_pipeline_status(pipeline_id, None, Status.CANCELLED, run_id=run_id)
    assert ended == [counted]
