"""The file store: where each run's stage files live, under one directory per run.

A run's directory is made by its first stage (generate) and by nothing after it: every later
write needs it to exist, so a write still under way when the run's pipeline is deleted fails
instead of making the directory again (tests/e2e/test_delete_race.py).
"""

import asyncio
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from polars.datatypes import DataType, DataTypeClass
from sqlalchemy import select

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import PipelineRun
from app.pipeline.transient import retried

logger = logging.getLogger(__name__)
REMOVING = ".removing-"  # a run directory being removed, renamed out of its run's way


@dataclass(frozen=True)
class RunFiles:
    """The Parquet files one run reads and writes, stage by stage."""

    root: Path

    @classmethod
    def for_run(cls, run_id: int) -> "RunFiles":
        return cls(runs_dir() / str(run_id))

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def ingested(self) -> Path:
        return self.root / "ingested.parquet"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.parquet"

    @property
    def processed(self) -> Path:
        return self.root / "processed.parquet"

    @property
    def transformed(self) -> Path:
        return self.root / "transformed.parquet"

    @property
    def results(self) -> Path:
        return self.root / "output" / "results.parquet"

    @property
    def summary(self) -> Path:
        return self.root / "output" / "summary.parquet"


_UPLOAD_DIR = re.compile(r"[0-9a-f]{32}")  # an upload's own directory: app/api/uploads.py


def uploads_dir() -> Path:
    """Where uploaded input files are kept, one directory per upload."""
    return get_settings().data_dir / "uploads"


def input_file(stored: str) -> Path:
    """Where a pipeline's input file is now. Its stored path is absolute: an upload made while the
    data directory was elsewhere (moved, or the project with it) and gone from there is under
    today's uploads directory, in a directory of its own name (as retention keeps it). Any other
    path (a file of PIPELINE_INPUT_DIR, one still where it was) is its stored path."""
    path = Path(stored)
    uploads, input_dir = uploads_dir(), get_settings().input_dir
    if path.is_relative_to(uploads) or (input_dir and path.is_relative_to(input_dir)):
        return path
    if path.parent.parent.name == uploads.name and _UPLOAD_DIR.fullmatch(path.parent.name):
        moved = uploads / path.parent.name / path.name
        if not os.path.lexists(path) and os.path.lexists(moved):
            return moved
    return path


def runs_dir() -> Path:
    return get_settings().data_dir / "runs"


def serving_dir() -> Path:
    """Second names (hard links) of the files downloads are serving (app/api/results.py)."""
    return get_settings().data_dir / "serving"


def remove_run_directory(root: Path) -> None:
    """Remove a run's directory, even while a process still writes into it. It is renamed out of
    the way in one step, then deleted: a file a stage creates meanwhile cannot land in the
    directory halfway through its deletion (which would then stay, not empty), and nothing makes
    it again under the run's name. A removal cut short leaves `.removing-*`, which retention
    deletes."""
    doomed = root.with_name(f"{REMOVING}{root.name}-{uuid.uuid4().hex}")
    try:
        os.rename(root, doomed)
    except FileNotFoundError:
        return
    except OSError:  # not renamable (a mount point, say): deleted where it is
        doomed = root
    shutil.rmtree(doomed, ignore_errors=True)


async def remove_if_deleted(files: RunFiles, run_id: int) -> bool:
    """After an attempt of a run failed or was stopped: if the run's row is gone (a cancel, then
    a delete of its pipeline while a stage was still starting), remove the directory the stage
    may have made after the delete removed it. True when it was; never raises, as a run's end
    must not depend on it."""

    async def deleted() -> bool:
        async with get_sessionmaker()() as session:
            found = await session.scalar(select(PipelineRun.id).where(PipelineRun.id == run_id))
            return found is None

    try:
        if not await retried(deleted, what=f"checking whether run {run_id} was deleted"):
            return False
    except Exception as exc:  # not known whether it was: if it was, retention removes it later
        logger.warning("run %d: could not check whether it was deleted (%s)", run_id, exc)
        return False
    try:
        await asyncio.to_thread(remove_run_directory, files.root)
    except Exception as exc:  # retention removes it later
        logger.warning("run %d: the directory of its deleted run may remain: %s", run_id, exc)
        return False
    return True


def scan(path: Path) -> pl.LazyFrame:
    """Lazily read a Parquet file, or every part file of a Parquet directory in the order they
    were written: part-100000 after part-99999, not between part-10000 and part-10001 as the
    names sort."""
    if not path.is_dir():
        return pl.scan_parquet(path)
    return pl.scan_parquet(sorted(path.glob("*.parquet"), key=lambda p: (len(p.name), p.name)))


def count_rows(path: Path) -> int:
    """Row count from the Parquet metadata, without reading the data."""
    return int(scan(path).select(pl.len()).collect().item())


# A row group is what a stage holds at once, of every column, several at a time: at most
# ROW_GROUP_ROWS rows, fewer for wide rows, so that it holds about ROW_GROUP_BYTES whatever the
# width. The generated data's widest file (transformed: 13 columns, 114 bytes a row estimated)
# keeps whole 256,000-row groups. 500 text columns x 300,000 rows took 2.5 GB a stage in groups of
# 256,000 rows, 1.8 GB in 64 MiB groups, 1.4 GB in 32 MiB and 1.0 GB in 16 MiB (bench/wide.py),
# but 16 MiB would split the generated data's groups.
ROW_GROUP_ROWS = 256_000
ROW_GROUP_BYTES = 32 * 1024**2
ROW_GROUP_MIN_ROWS = 1_000  # each row group costs every column a footer entry: not fewer rows
_VIEW_BYTES = 16  # a text, binary or nested value: its view or offsets, before its contents
_FIXED_BYTES: dict[DataTypeClass, int] = {
    pl.Boolean: 1,
    pl.Int8: 1,
    pl.UInt8: 1,
    pl.Int16: 2,
    pl.UInt16: 2,
    pl.Float16: 2,
    pl.Int32: 4,
    pl.UInt32: 4,
    pl.Float32: 4,
    pl.Date: 4,
    pl.Categorical: 4,
    pl.Enum: 4,
    pl.Int128: 16,
    pl.UInt128: 16,
    pl.Decimal: 16,
}


def row_group_rows(schema: pl.Schema) -> int:
    """Rows per row group for a file of `schema`: ROW_GROUP_BYTES over the estimated bytes of a
    row, within ROW_GROUP_MIN_ROWS and ROW_GROUP_ROWS. From the types alone, text as short
    values: columns of long text still get groups as large as short ones (their memory is
    bounded by the width cap and the row count, not by this)."""
    row_bytes = max(1, sum(map(value_bytes, schema.dtypes())))
    return max(ROW_GROUP_MIN_ROWS, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // row_bytes))


def value_bytes(dtype: DataType | DataTypeClass) -> int:
    """A value's bytes in memory, estimated from its type alone: a text value as a short one."""
    if isinstance(dtype, pl.Struct):
        return sum([value_bytes(field.dtype) for field in dtype.fields], 0)
    if isinstance(dtype, pl.Array):
        return dtype.size * value_bytes(dtype.inner)
    if isinstance(dtype, pl.List):  # its offsets, and a value
        return _VIEW_BYTES + value_bytes(dtype.inner)
    if isinstance(dtype, pl.Null):
        return 0
    return _FIXED_BYTES.get(
        dtype.base_type(), 8 if dtype.is_numeric() or dtype.is_temporal() else _VIEW_BYTES
    )


def sink(frame: pl.LazyFrame, path: Path, *, final: bool = False) -> int:
    """Write a lazy frame to Parquet with the streaming engine; the number of rows written.
    `final` files (those users download) get zstd and column statistics. The file appears whole
    or not at all: a process killed mid-write leaves no truncated file to be read or served.
    Its directory must exist: a run's, removed meanwhile (its pipeline deleted), is not made again.
    It is written in a staging directory of its own, removed with it when the write fails:
    Polars' streaming writer can create its file after the error has been raised (11 of 150
    failed writes here left one a moment later), and cannot once the directory is gone.
    """
    staging = path.with_name(f".{path.name}.writing")
    staging.mkdir(exist_ok=True)
    written = staging / path.name
    try:
        frame.sink_parquet(
            written,
            # intermediates are read back once, whole, from local disk: uncompressed is cheapest
            # (LZ4 costs ~0.2 s per 10M rows and stage); final files get zstd level 1, about as
            # fast to write as LZ4 and a third smaller (the default level 3 is twice as slow)
            compression="zstd" if final else "uncompressed",
            compression_level=1 if final else None,
            statistics=final,
            row_group_size=row_group_rows(frame.collect_schema()),
            engine="streaming",
        )
    except BaseException:
        _remove_staging(staging)
        raise
    written.replace(path)
    staging.rmdir()
    return count_rows(path)


def _remove_staging(staging: Path) -> None:
    """The staging directory and what a failed write left in it, even a file created meanwhile."""
    for _ in range(10):
        shutil.rmtree(staging, ignore_errors=True)
        if not staging.exists():
            return
