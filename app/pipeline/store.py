"""The file store: where each run's stage files live, under one directory per run."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from app.config import get_settings


@dataclass(frozen=True)
class RunFiles:
    """The Parquet files one run reads and writes, stage by stage."""

    root: Path

    @classmethod
    def for_run(cls, run_id: int) -> "RunFiles":
        return cls(get_settings().data_dir / "runs" / str(run_id))

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


def scan(path: Path) -> pl.LazyFrame:
    """Lazily read a Parquet file, or every part file of a Parquet directory."""
    return pl.scan_parquet(path / "*.parquet" if path.is_dir() else path)


def count_rows(path: Path) -> int:
    """Row count from the Parquet metadata, without reading the data."""
    return int(scan(path).select(pl.len()).collect().item())


def sink(frame: pl.LazyFrame, path: Path) -> int:
    """Write a lazy frame to Parquet (streaming) and return the number of rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.sink_parquet(path, row_group_size=256_000)
    return count_rows(path)
