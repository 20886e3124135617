"""A stopped run's stage stops between its units of work (app/pipeline/stage_stop.py): generate
between its parts, which once all went on being written after a cancel (834 MB for 20M records);
and what a cancelled run's directory keeps."""

import asyncio
import gc
import logging
import threading
from pathlib import Path

import polars as pl
import pytest

from app.pipeline import generator
from app.pipeline.generator import generate_batch, write_generated
from app.pipeline.stage_stop import StageStoppedError, StageThreads, keep_only_rejects
from app.pipeline.store import RunFiles


def test_generate_begins_no_part_once_its_stop_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread writes the parts in order; the stop is set while part 2 is being made. Part 2,
    in flight, is written whole; no part after it is begun."""
    stop = threading.Event()
    begun: list[int] = []

    def batch(start_id: int, size: int, *, seed: int) -> pl.DataFrame:
        begun.append(start_id)
        if start_id == 3:  # part 2, of batch_rows=1
            stop.set()
        return generate_batch(start_id, size, seed=seed)

    monkeypatch.setattr(generator, "generate_batch", batch)
    monkeypatch.setattr(generator, "threads", lambda: 1)
    with pytest.raises(StageStoppedError) as stopped:
        write_generated(tmp_path, 50, seed=1, batch_rows=1, stop=stop)
    assert str(stopped.value) == "generate stopped between parts: 3 of 50 parts written"
    assert begun == [1, 2, 3]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert pl.read_parquet(tmp_path / "part-00002.parquet").equals(generate_batch(3, 1, seed=1))


def test_generate_with_a_stop_never_set_writes_every_part(tmp_path: Path) -> None:
    paths = write_generated(tmp_path, 7, seed=1, batch_rows=2, stop=threading.Event())
    assert [path.name for path in paths] == [f"part-{i:05d}.parquet" for i in range(4)]


async def test_a_cancelled_await_tells_the_stages_thread_to_stop_and_waits_for_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cancelling the await of asyncio.to_thread left the thread running, told nothing. Now the
    stop is set, the cancel raised at once, and `finished` waits for the thread's end — reading
    its outcome (asyncio logged "Future exception was never retrieved" at the next collection,
    into whichever test ran then)."""
    threads = StageThreads()
    started, release = threading.Event(), threading.Event()
    ended: list[str] = []

    def work(stop: threading.Event) -> int:
        started.set()
        assert stop.wait(60)  # a bound for a broken build, not a timing
        assert release.wait(60)  # the thread is still running after the await has ended
        ended.append("stopped")
        raise StageStoppedError("stopped between parts")

    stage = asyncio.create_task(threads.run("generate", work))
    assert await asyncio.to_thread(started.wait, 60)
    stage.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stage
    assert threads.stop.is_set() and ended == []
    release.set()
    stopped = await threads.finished()
    assert ended == ["stopped"]
    assert isinstance(stopped, StageStoppedError) and str(stopped) == "stopped between parts"
    del stopped, threads, stage  # what held the thread's future, and through it asyncio's
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    # only what this test made: the collection also finds other tests' garbage in this process
    # (a browser test's Playwright tasks: "Task was destroyed but it is pending!")
    said = [record.getMessage() for record in caplog.records]
    assert [message for message in said if "StageStoppedError" in message] == []


async def test_a_stage_that_ends_by_itself_is_not_told_to_stop() -> None:
    def failing(stop: threading.Event) -> int:
        raise ValueError("bad row")

    threads = StageThreads()
    assert await threads.run("ingest", lambda stop: 42) == 42
    with pytest.raises(ValueError, match=r"^bad row$"):
        await threads.run("ingest", failing)
    assert not threads.stop.is_set()
    assert isinstance(await threads.finished(), ValueError)


def test_a_cancelled_runs_directory_keeps_only_its_rejects(tmp_path: Path) -> None:
    """What a cancelled run can still serve: its rejects file and their conversions (one being
    made by a download too); nothing else of it is ever served."""
    files = RunFiles(tmp_path / "7")
    files.raw.mkdir(parents=True)
    (files.raw / "part-00000.parquet").write_bytes(b"raw")
    files.results.parent.mkdir()
    written = [
        files.ingested,
        files.processed,
        files.transformed,
        files.results,
        files.rejects,
        files.root / "rejects.csv",
        files.root / ".rejects.jsonl.0123abcd.tmp",
        files.root / ".processed.parquet.writing",
    ]
    for path in written:
        path.write_bytes(b"x")
    (files.root / ".transformed.parquet.parts").mkdir()
    keep_only_rejects(files)
    assert sorted(path.name for path in files.root.iterdir()) == [
        ".rejects.jsonl.0123abcd.tmp",
        "rejects.csv",
        "rejects.parquet",
    ]


def test_a_run_directory_removed_meanwhile_is_not_made_again(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "8")
    keep_only_rejects(files)
    assert not files.root.exists()
