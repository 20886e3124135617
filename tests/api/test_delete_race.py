"""A pipeline deleted right after a cancel, while its run's flow-run process is still writing:
nothing of the run's directory may stay (tests/e2e/test_delete_race.py does it on the real
stack). The process here is a thread doing what the stages do, on both database backends."""

import asyncio
import os
import threading
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from prefect.client.schemas.objects import DeploymentSchedule

from app import removal
from app.db import get_sessionmaker
from app.models import Pipeline, Status, utcnow
from app.pipeline import schedules, store, work
from app.pipeline.reconcile import retention
from app.pipeline.reconcile.retention import sweep_runs
from app.pipeline.store import RunFiles, runs_dir, sink
from tests.conftest import SetSetting
from tests.support.rows import add_pipeline, add_run


@pytest.fixture
def data_dir(tmp_path: Path, setting: SetSetting, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory of the test's own, and a Prefect without schedules (it is unreachable)."""

    async def no_schedule(pipeline_id: int) -> DeploymentSchedule | None:
        return None

    monkeypatch.setattr(schedules, "delete_pipeline_schedule", no_schedule)
    setting("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


async def _delete(pipeline_id: int) -> None:
    async with get_sessionmaker()() as session:
        pipeline = await session.get(Pipeline, pipeline_id)
        assert pipeline is not None
        await removal.delete_pipeline(session=session, pipeline=pipeline)


def _left(runs: Path) -> list[str]:
    return sorted(str(path.relative_to(runs)) for path in runs.rglob("*"))


def _stage_still_writing(files: RunFiles, outcome: list[str]) -> None:
    """generate writing its parts when the delete comes, then the write a later stage makes
    (the flow-run process stops only once Prefect's cancel reaches it, seconds later)."""
    for step in (
        lambda: work.generate(files, record_count=4_000_000, seed=1, batch_rows=4_000),
        lambda: sink(pl.LazyFrame({"id": [1]}), files.ingested),
    ):
        try:
            step()
            outcome.append("wrote")
        except OSError as exc:
            outcome.append(type(exc).__name__)


async def test_a_stage_writing_through_the_delete_leaves_nothing(
    database: str, data_dir: Path
) -> None:
    pipeline_id = await add_pipeline("cancelled, then deleted")
    run_id = await add_run(pipeline_id, Status.CANCELLED, {})
    files = RunFiles.for_run(run_id)
    outcome: list[str] = []
    writer = threading.Thread(target=_stage_still_writing, args=(files, outcome))
    writer.start()
    while not any(files.raw.glob("part-*.parquet")):  # it is writing
        assert writer.is_alive()
        await asyncio.sleep(0.01)

    await _delete(pipeline_id)
    await asyncio.to_thread(writer.join)

    assert outcome == ["FileNotFoundError", "FileNotFoundError"]
    assert _left(runs_dir()) == []


async def test_a_stage_started_after_the_delete_is_removed_when_the_run_stops(
    database: str, data_dir: Path
) -> None:
    """The cancel reached the run in our rows, the delete removed the rows and found no
    directory, and only then did the stage make it: the flow-run process, stopping, removes it."""
    pipeline_id = await add_pipeline("deleted first")
    deleted = await add_run(pipeline_id, Status.CANCELLED, {})
    kept = await add_run(await add_pipeline("kept"), Status.FAILED, {})
    await _delete(pipeline_id)
    for run_id in (deleted, kept):
        work.generate(RunFiles.for_run(run_id), record_count=10, seed=1, batch_rows=10)

    assert [await store.remove_if_deleted(RunFiles.for_run(r), r) for r in (deleted, kept)] == [
        True,
        False,
    ]
    assert _left(runs_dir()) == [str(kept), f"{kept}/raw", f"{kept}/raw/part-00000.parquet"]


async def test_retention_finishes_a_removal_a_killed_process_left(
    database: str, data_dir: Path
) -> None:
    """A process killed between renaming a run's directory away and deleting it; one being
    deleted right now (changed within REMOVAL_GRACE) is its remover's."""
    runs = runs_dir()
    (runs / ".removing-7-0123abcd" / "raw").mkdir(parents=True)
    (runs / ".removing-7-0123abcd" / "raw" / "part-00000.parquet").write_bytes(b"x")
    (runs / ".hidden").mkdir()  # not a removal's: left alone
    os.utime(runs / ".hidden", (0, 0))

    assert (await sweep_runs()).leftovers == 0
    later = utcnow() + retention.REMOVAL_GRACE + timedelta(seconds=1)
    assert (await sweep_runs(now=later)).leftovers == 1
    assert _left(runs) == [".hidden"]
