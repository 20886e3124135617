"""The Dask fan-out of the transform stage reads back exactly as the single-process transform."""

import asyncio
import os
from pathlib import Path

import polars as pl
import pytest
from distributed import Client, LocalCluster
from polars.testing import assert_frame_equal, assert_series_equal

from app.pipeline import generator, stages
from app.pipeline.dask_fanout import (
    apply_transform,
    combine_averages,
    partial_totals,
    partition_bounds,
    transform_partitioned,
)
from app.pipeline.stages import AVERAGE
from app.pipeline.store import scan

ROWS = 20_000


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20k generated records through validate and process, as the transform stage receives them."""
    path = tmp_path_factory.mktemp("dask") / "processed.parquet"
    valid, _ = stages.validate(generator.generate_batch(1, ROWS, seed=42).lazy())
    stages.process(valid).collect().write_parquet(path, row_group_size=3_000)
    return path


def assert_same_as_single_process(dest: Path, processed: Path) -> None:
    expected = stages.transform(scan(processed)).collect()
    actual = scan(dest).collect()
    assert actual.schema == expected.schema
    # Every column but the average is computed row by row: bit for bit the same, in the same order.
    assert_frame_equal(actual.drop(AVERAGE), expected.drop(AVERAGE), check_exact=True)
    # The average is a float sum regrouped by partition: equal up to the last bits of rounding.
    assert_series_equal(
        actual[AVERAGE], expected[AVERAGE], check_exact=False, rel_tol=1e-12, abs_tol=0
    )
    # One global average per category, not one per partition.
    per_category = actual.group_by("category").agg(pl.col(AVERAGE).n_unique()).sort("category")
    assert per_category.rows() == [("A", 1), ("B", 1), ("C", 1), ("D", 1)]


def test_partition_bounds_cover_every_row_once() -> None:
    assert partition_bounds(10, 3) == [(0, 3), (3, 3), (6, 4)]
    assert partition_bounds(2, 5) == [(0, 1), (1, 1)]
    assert partition_bounds(0, 4) == [(0, 0)]
    with pytest.raises(
        ValueError, match=r"^partitions must be at least 1 \(PIPELINE_DASK_PARTITIONS\); got 0$"
    ):
        partition_bounds(10, 0)


def test_partial_sums_combine_into_the_global_average(processed: Path) -> None:
    partials = [partial_totals(processed, offset, n) for offset, n in partition_bounds(ROWS, 4)]
    assert [p["count"].sum() for p in partials] == [5_000] * 4
    averages = combine_averages(partials)
    expected = stages.category_averages(scan(processed))
    assert sorted(averages) == sorted(expected) == ["A", "B", "C", "D"]
    assert averages == pytest.approx(expected, rel=1e-12, abs=0)


def test_one_partition_applies_the_global_averages_to_its_rows(
    processed: Path, tmp_path: Path
) -> None:
    bounds = partition_bounds(ROWS, 7)
    assert bounds[-1] == (17_142, 2_858)
    averages = combine_averages([partial_totals(processed, o, n) for o, n in bounds])
    part = tmp_path / "part-00006.parquet"
    assert apply_transform(processed, 17_142, 2_858, averages, part) == 2_858
    expected = stages.transform(scan(processed)).collect().slice(17_142, 2_858)
    assert_frame_equal(
        pl.read_parquet(part).drop(AVERAGE), expected.drop(AVERAGE), check_exact=True
    )


def test_local_cluster_in_threads(processed: Path, tmp_path: Path) -> None:
    dest = tmp_path / "transformed.parquet"
    dest.write_bytes(b"left by an earlier single-process attempt")
    stale = tmp_path / ".transformed.parquet.parts" / "part-00009.parquet"
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier attempt that died")
    written = transform_partitioned(
        processed,
        dest,
        partitions=7,
        cluster_kwargs={
            "processes": False,
            "n_workers": 2,
            "threads_per_worker": 1,
            "dashboard_address": ":0",
        },
    )
    assert written == ROWS
    assert [p.name for p in tmp_path.iterdir()] == ["transformed.parquet"]  # parts cleaned up
    assert_same_as_single_process(dest, processed)


def test_existing_scheduler_with_worker_processes(processed: Path, tmp_path: Path) -> None:
    """A scheduler shared with another run: the averages were scattered under the categories'
    names, so a run read the other's. And a retry rewrote the file in place, through the results
    file the export stage had published as a second name of it."""
    dest, published = tmp_path / "transformed.parquet", tmp_path / "results.parquet"
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster.scheduler_address) as other_run,
    ):
        held = other_run.scatter(dict.fromkeys("ABCD", 1.0), broadcast=True)  # noqa: F841
        written = transform_partitioned(
            processed, dest, partitions=3, address=cluster.scheduler_address
        )
        assert_same_as_single_process(dest, processed)
        os.link(dest, published)
        first = published.read_bytes()
        again = transform_partitioned(
            processed, dest, partitions=2, address=cluster.scheduler_address
        )
    assert (written, again) == (ROWS, ROWS)
    assert_same_as_single_process(dest, processed)
    assert (published.read_bytes(), dest.stat().st_ino != published.stat().st_ino) == (first, True)


async def test_called_off_the_event_loop_as_the_flow_calls_its_stages(
    processed: Path, tmp_path: Path
) -> None:
    """The flow runs stage work with asyncio.to_thread; the Dask client must work from there."""
    dest = tmp_path / "transformed.parquet"
    written = await asyncio.to_thread(
        transform_partitioned,
        processed,
        dest,
        partitions=2,
        cluster_kwargs={"processes": False, "n_workers": 1, "dashboard_address": ":0"},
    )
    assert written == ROWS
    assert_same_as_single_process(dest, processed)


def test_the_transform_stage_fans_out_when_partitions_are_set(tmp_path: Path) -> None:
    """The stage function the flow's transform task calls: Dask path == single-process path."""
    from app.pipeline import work
    from app.pipeline.store import RunFiles

    single, fanned = RunFiles(tmp_path / "single"), RunFiles(tmp_path / "fanned")
    for files in (single, fanned):
        work.generate(files, record_count=ROWS, seed=42, batch_rows=ROWS)
        work.ingest(files)
        work.process(files)
    with LocalCluster(
        processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        fanned_out = work.transform(
            fanned, dask_partitions=4, dask_address=cluster.scheduler_address
        )
    assert fanned_out == work.transform(single)
    assert_same_as_single_process(fanned.transformed, single.processed)
