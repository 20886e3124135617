"""The synthetic records: the vectorized generator makes exactly the records of the definition."""

import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from app.pipeline import generator
from app.pipeline.generator import EPOCH, generate_batch, record, write_generated
from app.pipeline.stages import CATEGORIES, REQUIRED_COLUMNS, validate


def test_first_records_of_the_default_seed() -> None:
    # pins the data users of seed 42 have seen since the counter-based generator
    assert record(1, seed=42) == {
        "id": 1,
        "name": "record-1",
        "category": "D",
        "value": 636.42,
        "quantity": 92,
        "is_active": False,
        "created_at": datetime(2026, 1, 18, 9, 16, 31),
    }
    assert generate_batch(1, 2, seed=42).row(1, named=True) == record(2, seed=42)


@pytest.mark.parametrize(("start", "seed"), [(1, 42), (5_000_001, 7), (10**12, -3)])
def test_batch_is_the_records_of_the_definition(start: int, seed: int) -> None:
    expected = pl.DataFrame(
        [record(i, seed=seed) for i in range(start, start + 3000)], schema=REQUIRED_COLUMNS
    )
    assert_frame_equal(generate_batch(start, 3000, seed=seed), expected)


def test_same_seed_is_identical_and_another_differs() -> None:
    assert_frame_equal(generate_batch(1, 500, seed=42), generate_batch(1, 500, seed=42))
    other = generate_batch(1, 500, seed=43)
    for column in ("category", "value", "quantity", "created_at"):
        assert (other[column] != generate_batch(1, 500, seed=42)[column]).sum() > 300


def test_schema_ranges_and_ids() -> None:
    df = generate_batch(101, 20_000, seed=7)
    assert dict(df.schema) == REQUIRED_COLUMNS
    assert df["id"].to_list() == list(range(101, 20_101))
    assert df["name"][0] == "record-101"
    assert df["name"][-1] == "record-20100"
    assert df.null_count().sum_horizontal().item() == 0
    assert df["value"].min() >= 10.0  # type: ignore[operator]
    assert df["value"].max() <= 1000.0  # type: ignore[operator]
    assert (df["value"] == df["value"].round(2)).all()
    assert df["quantity"].min() == 1
    assert df["quantity"].max() == 100
    shares = df["category"].value_counts(normalize=True).sort("category")
    assert shares["category"].to_list() == list(CATEGORIES)
    assert all(0.24 < share < 0.26 for share in shares["proportion"])
    assert 0.79 < df["is_active"].mean() < 0.81  # type: ignore[operator]
    assert df["created_at"].min() >= EPOCH  # type: ignore[operator]
    assert df["created_at"].max() < datetime(2027, 1, 1)  # type: ignore[operator]
    assert (df["created_at"].dt.microsecond() == 0).all()
    valid, rejects = validate(df.lazy())
    assert valid.collect().height == 20_000
    assert rejects.collect().height == 0


def test_empty_batch() -> None:
    df = generate_batch(1, 0, seed=1)
    assert df.height == 0
    assert dict(df.schema) == REQUIRED_COLUMNS
    with pytest.raises(ValueError, match="size must be >= 0, got -1"):
        generate_batch(1, -1, seed=1)


@pytest.mark.parametrize(("count", "batch"), [(10, 3), (9, 3), (1, 5), (0, 4)])
def test_write_generated(tmp_path: Path, count: int, batch: int) -> None:
    out_dir = tmp_path / "nested" / "raw"
    paths = write_generated(out_dir, count, seed=3, batch_rows=batch)
    assert len(paths) == math.ceil(count / batch)
    assert [p.name for p in paths] == [f"part-{i:05d}.parquet" for i in range(len(paths))]
    assert all(p.parent == out_dir and p.exists() for p in paths)
    if paths:
        df = pl.read_parquet(paths)
        assert df.height == count
        assert df["id"].to_list() == list(range(1, count + 1))


def test_the_batch_size_does_not_change_the_records(tmp_path: Path) -> None:
    by_three = pl.read_parquet(write_generated(tmp_path / "a", 10, seed=9, batch_rows=3))
    by_seven = pl.read_parquet(write_generated(tmp_path / "b", 10, seed=9, batch_rows=7))
    assert_frame_equal(by_three, by_seven)
    assert_frame_equal(by_three, generate_batch(1, 10, seed=9))


def test_a_failed_part_stops_the_parts_not_yet_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def batch(start_id: int, size: int, *, seed: int) -> pl.DataFrame:
        if start_id == 3:
            raise OSError("No space left on device")
        return generate_batch(start_id, size, seed=seed)

    monkeypatch.setattr(generator, "generate_batch", batch)
    monkeypatch.setattr(generator, "threads", lambda: 1)
    with pytest.raises(OSError, match=r"^No space left on device$"):
        write_generated(tmp_path, 50, seed=1, batch_rows=1)
    written = sorted(path.name for path in tmp_path.iterdir())
    # parts 0 and 1 came first; the one thread may have begun part 3 before the failure was seen
    assert written[:2] == ["part-00000.parquet", "part-00001.parquet"]
    assert len(written) <= 3


def test_parts_in_flight_are_a_window_not_all_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outstanding, most = 0, 0
    lock = threading.Lock()

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            nonlocal outstanding, most
            with lock:
                outstanding += 1
                most = max(most, outstanding)
            future = super().submit(fn, *args, **kwargs)
            future.add_done_callback(lambda _: finished())
            return future

    def finished() -> None:
        nonlocal outstanding
        with lock:
            outstanding -= 1

    monkeypatch.setattr(generator, "ThreadPoolExecutor", CountingPool)
    monkeypatch.setattr(generator, "threads", lambda: 2)
    paths = write_generated(tmp_path, 40, seed=1, batch_rows=1)
    assert [path.name for path in paths] == [f"part-{i:05d}.parquet" for i in range(40)]
    assert most <= 3  # two writing, one waiting
