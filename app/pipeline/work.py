"""Each stage's work on one run's files: what the Prefect tasks run and what bench/data.py times.

Every stage reads its input lazily from Parquet and streams its output to Parquet; no stage holds
the run's rows in memory or as Python objects. Intermediate files are uncompressed (cheapest to
write and read back); the results the user downloads are written once and published by the
export stage as a hard link, not a second copy.
"""

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from app.pipeline import generator, stages
from app.pipeline.input_files import inputs, sent_lines
from app.pipeline.store import RunFiles, count_rows, scan, sink


@dataclass(frozen=True)
class StageOutput:
    records_in: int
    records_out: int
    records_rejected: int = 0


class RecordsRejectedError(ValueError):
    """Every input record was rejected: the stage fails, and still reports what it counted."""

    def __init__(self, message: str, counts: StageOutput) -> None:
        super().__init__(message)
        self.counts = counts


@dataclass(frozen=True)
class InputSource:
    """A pipeline's input file instead of the generator: where it is and its format."""

    path: Path
    format: str


def generate(
    files: RunFiles,
    *,
    record_count: int,
    seed: int,
    batch_rows: int,
    source: InputSource | None = None,
    stop: threading.Event | None = None,
) -> StageOutput:
    """Synthetic records (deterministic for the seed), or the pipeline's input file converted,
    as the run's raw Parquet parts. The generator checks `stop` between its parts (its run was
    stopped: app/pipeline/stage_stop.py); an input file's conversion, one Polars query like
    every other stage's, runs to its end."""
    # a retried attempt starts from nothing, and so does a run whose id an earlier database
    # used (its files would be served as this run's); downloads hold their own links (serving/).
    # The one write that makes the run's directory (app/pipeline/store.py).
    shutil.rmtree(files.root, ignore_errors=True)
    files.root.mkdir(parents=True, exist_ok=True)
    if source is None:
        generator.write_generated(
            files.raw, record_count, seed=seed, batch_rows=batch_rows, stop=stop
        )
        return StageOutput(records_in=record_count, records_out=count_rows(files.raw))
    sent_lines.remember(files, source.path, source.format)  # its rejects as sent: see ingest
    rows = inputs.convert(source.path, source.format, files.raw / "part-00000.parquet")
    return StageOutput(records_in=rows, records_out=rows)


def ingest(files: RunFiles) -> StageOutput:
    """Validate the raw records: good rows go on, bad rows go to the rejects file with a reason."""
    records_in = count_rows(files.raw)
    valid, rejects = sent_lines.validate(files)  # stages.validate, rejects numbered for their lines
    # two queries, not one collect_all: sharing the scan buffers it (1.8 GB at 50M rows vs 0.7)
    records_out = sink(valid, files.ingested)
    if records_out == records_in:  # every row is valid: no second pass to find no rejects
        rejects = pl.LazyFrame(schema=rejects.collect_schema())
    rejected = sent_lines.sink_rejects(rejects, files, records_in=records_in)
    if records_out == 0 and records_in > 0:
        one = records_in == 1
        every = "the only input record was" if one else f"all {records_in:,} input records were"
        raise RecordsRejectedError(
            f"{every} rejected ({_reasons(files.rejects)}); the run's rejects file lists "
            f"{'it' if one else 'each'} with its reject_reason",
            StageOutput(records_in, records_out, rejected),
        )
    return StageOutput(records_in, records_out, rejected)


def _reasons(rejects: Path) -> str:
    """'unknown category: 2, null id: 1' — the reasons of a rejects file, most frequent first."""
    counts = (
        scan(rejects)
        .group_by(stages.REJECT_REASON)
        .len()
        .sort(["len", stages.REJECT_REASON], descending=[True, False])
        .collect()
    )
    return ", ".join(f"{reason}: {n:,}" for reason, n in counts.iter_rows())


def process(files: RunFiles) -> StageOutput:
    """Compute each record's total value."""
    records_out = sink(stages.process(scan(files.ingested)), files.processed)
    return StageOutput(count_rows(files.ingested), records_out)


def transform(
    files: RunFiles, *, dask_partitions: int = 0, dask_address: str | None = None
) -> StageOutput:
    """Flag high-value records, assign tiers, category averages and discounts — in this process,
    or fanned out over `dask_partitions` row ranges on a Dask cluster (same output)."""
    if dask_partitions:
        # imported here: dask.distributed adds seconds to every flow-run start otherwise
        from app.pipeline.dask_fanout import transform_partitioned

        records_out = transform_partitioned(
            files.processed, files.transformed, partitions=dask_partitions, address=dask_address
        )
    else:
        records_out = sink(stages.transform(scan(files.processed)), files.transformed, final=True)
    return StageOutput(count_rows(files.processed), records_out)


def export(files: RunFiles) -> StageOutput:
    """Publish the results file and write the per-category summary."""
    publish(files.transformed, files.results)
    sink(stages.summarize(scan(files.transformed)), files.summary, final=True)
    return StageOutput(count_rows(files.transformed), count_rows(files.results))


def publish(source: Path, dest: Path) -> None:
    """Make `dest` the same file as `source`: a hard link (no copy), else a copy; atomic. Its
    directory is made, but not the run's it is in (app/pipeline/store.py)."""
    dest.parent.mkdir(exist_ok=True)
    staging = dest.with_name(f".{dest.name}.tmp")
    staging.unlink(missing_ok=True)
    try:
        os.link(source, staging)
    except OSError:
        shutil.copyfile(source, staging)
    os.replace(staging, dest)


def run_all(
    files: RunFiles,
    *,
    record_count: int,
    seed: int,
    batch_rows: int,
    source: InputSource | None = None,
) -> dict[str, StageOutput]:
    """The five stages in order, as the flow runs them, without Prefect (benchmarks, tests)."""
    return {
        "generate": generate(
            files, record_count=record_count, seed=seed, batch_rows=batch_rows, source=source
        ),
        "ingest": ingest(files),
        "process": process(files),
        "transform": transform(files),
        "export": export(files),
    }
