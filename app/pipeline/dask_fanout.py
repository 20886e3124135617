"""The transform stage fanned out over row ranges of its input onto a Dask cluster, for data that
outgrows one machine; its output file reads back exactly as `stages.transform`'s (same rows, same
order), so the export stage is unchanged.

The category averages are global, so it runs in two passes: each partition returns its per-category
sum and count of total_value, the caller combines them into the averages, and each partition then
applies the row-level transform with those averages and writes its own part file. Workers read the
input and write the parts themselves (the paths must be shared storage for workers on other
machines); only the tiny partial sums travel through the scheduler. The parts are then streamed, in
order, into the one output file.

The cluster is Prefect's `DaskTaskRunner` (prefect-dask): an existing scheduler's `address`, or a
temporary `distributed.LocalCluster` it starts and stops. The partition functions are plain
functions, not Prefect tasks, so Dask workers need the project installed but no Prefect API.
"""

import shutil
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import polars as pl
from prefect_dask import DaskTaskRunner

from app.pipeline import stages
from app.pipeline.store import count_rows, row_group_rows, scan, sink

PART_NAME = "part-{:05d}.parquet"


def partition_bounds(rows: int, partitions: int) -> list[tuple[int, int]]:
    """(offset, length) of contiguous row ranges covering `rows`, sizes differing by at most one."""
    if partitions < 1:
        raise ValueError(
            f"partitions must be at least 1 (PIPELINE_DASK_PARTITIONS); got {partitions}"
        )
    count = max(1, min(partitions, rows))
    starts = [index * rows // count for index in range(count + 1)]
    return [(start, end - start) for start, end in pairwise(starts)]


def partial_totals(source: Path, offset: int, length: int) -> pl.DataFrame:
    """Per category: the sum and the count of non-null total_value in one row range."""
    return (
        scan(source)
        .slice(offset, length)
        .group_by("category")
        .agg(
            pl.col("total_value").sum().alias("total"),
            pl.col("total_value").count().alias("count"),
        )
        .collect()
    )


def combine_averages(partials: list[pl.DataFrame]) -> stages.CategoryAverages:
    """The global per-category mean of total_value from every partition's sums and counts."""
    combined = pl.concat(partials).group_by("category").agg(pl.sum("total"), pl.sum("count"))
    return {
        category: total / count if count else None
        for category, total, count in combined.iter_rows()
    }


def apply_transform(
    source: Path, offset: int, length: int, averages: stages.CategoryAverages, part: Path
) -> int:
    """Transform one row range with the global averages and write it as `part`; rows written."""
    frame = stages.transform(scan(source).slice(offset, length), averages)
    part.parent.mkdir(exist_ok=True)  # never the run's own directory (app/pipeline/store.py)
    frame.sink_parquet(
        part, compression="lz4", row_group_size=row_group_rows(frame.collect_schema())
    )
    return count_rows(part)


def transform_partitioned(
    source: Path,
    dest: Path,
    *,
    partitions: int,
    address: str | None = None,
    cluster_kwargs: Mapping[str, Any] | None = None,
) -> int:
    """Run the transform stage over `partitions` row ranges of `source` on a Dask cluster and
    write the result to the Parquet file `dest`; returns the number of rows written.

    `address` is an existing scheduler's (tcp://host:8786); without it a LocalCluster with
    `cluster_kwargs` runs for this call. The part files go to a directory beside `dest`.
    """
    bounds = partition_bounds(count_rows(source), partitions)
    parts_dir = dest.with_name(f".{dest.name}.parts")
    shutil.rmtree(parts_dir, ignore_errors=True)  # a retried stage starts from nothing
    runner = (
        DaskTaskRunner(address=address)
        if address
        else DaskTaskRunner(cluster_kwargs=dict(cluster_kwargs or {}))
    )
    parts = [parts_dir / PART_NAME.format(index) for index in range(len(bounds))]
    with runner:
        client = runner.client
        offsets, lengths = [o for o, _ in bounds], [n for _, n in bounds]
        sources = [source] * len(bounds)
        partials = client.gather(client.map(partial_totals, sources, offsets, lengths, pure=False))
        # a few numbers, sent with each task: scattered, a dict's keys (the categories) became
        # the scheduler's keys, and two runs on one scheduler read each other's averages
        averages = combine_averages(partials)
        written = client.gather(
            client.map(
                apply_transform,
                sources,
                offsets,
                lengths,
                [averages] * len(bounds),
                parts,
                pure=False,
            )
        )
    try:
        # the parts in row order, streamed into the one file the export stage reads, whole or
        # not at all (the published results are a second name of it: never rewritten in place)
        rows = sink(pl.scan_parquet(parts), dest, final=True)
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    if rows != sum(written):
        raise RuntimeError(f"transform wrote {sum(written)} rows in parts but {rows} in {dest}")
    return rows
