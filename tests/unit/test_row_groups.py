"""Row groups shrink with the row's width (app/pipeline/store.py): a stage holds a row group of
every column at once, and a 500-column input held 256,000 rows of each (2.5 GB). The generated
data keeps its 256,000-row groups; stage readers and downloads read the smaller groups whole."""

from pathlib import Path

import polars as pl
import pytest

from app.api.results import converted
from app.pipeline import stages, store, work
from app.pipeline.store import RunFiles, sink
from bench.parquet_footer import row_group_sizes

REQUIRED = "id,name,category,value,quantity,is_active,created_at"


def _text_columns(schema: pl.Schema, extra: int) -> pl.Schema:
    return pl.Schema({**schema, **{f"c{i}": pl.String() for i in range(extra)}})


def test_the_generated_data_keeps_256000_row_groups_in_every_stage_file(tmp_path: Path) -> None:
    """The narrow files the benchmarks measure are written as before: 300,000 records are a group
    of 256,000 rows and one of the rest, in each stage's file."""
    files = RunFiles(tmp_path / "run")
    work.run_all(files, record_count=300_000, seed=1, batch_rows=1_000_000)
    written = [files.ingested, files.processed, files.transformed, files.results]
    assert [row_group_sizes(path) for path in written] == [[256_000, 44_000]] * 4
    assert row_group_sizes(files.summary) == [4]


@pytest.mark.parametrize(
    ("extra", "rows"),
    [
        (0, 256_000),  # 65 bytes a row: 516,222 rows fit in 32 MiB, ROW_GROUP_ROWS is the most
        (10, 149_130),  # 225 bytes
        (20, 87_154),  # 385 bytes
        (100, 20_152),  # 1,665 bytes
        (493, 4_219),  # the 500 columns PIPELINE_MAX_INPUT_COLUMNS allows: 7,953 bytes
        (5_000, 1_000),  # 80,065 bytes: 419 rows fit, ROW_GROUP_MIN_ROWS is the fewest
    ],
)
def test_rows_per_group_fall_as_text_columns_are_added(extra: int, rows: int) -> None:
    assert store.row_group_rows(_text_columns(pl.Schema(stages.REQUIRED_COLUMNS), extra)) == rows


@pytest.mark.parametrize(
    ("dtype", "size"),
    [
        (pl.Boolean(), 1),
        (pl.Int16(), 2),
        (pl.Float32(), 4),
        (pl.Date(), 4),
        (pl.Int64(), 8),
        (pl.Datetime("ns", "UTC"), 8),
        (pl.Decimal(20, 2), 16),
        (pl.String(), 16),  # a short text: its view; a longer one costs its bytes besides
        (pl.List(pl.Int32()), 20),  # its offsets and one value
        (pl.Array(pl.Float32(), 3), 12),
        (pl.Struct({"a": pl.Int8(), "b": pl.Binary()}), 17),
        (pl.Null(), 0),
    ],
    ids=str,
)
def test_each_type_counts_its_own_bytes(dtype: pl.DataType, size: int) -> None:
    assert store.value_bytes(dtype) == size


def test_a_wide_file_is_written_in_groups_of_its_width(tmp_path: Path) -> None:
    frame = pl.LazyFrame({"id": range(100_000)}).with_columns(
        pl.lit("x").alias(f"c{i}") for i in range(100)
    )  # 8 + 100 * 16 bytes a row: 20,867 rows a group
    assert sink(frame, tmp_path / "wide.parquet") == 100_000
    assert row_group_sizes(tmp_path / "wide.parquet") == [20_867] * 4 + [16_532]


def test_a_wide_input_runs_every_stage_and_downloads_whole(tmp_path: Path) -> None:
    """Each stage reads the groups its predecessor wrote, smaller than before, and a download
    converts the results whole, in order."""
    rows, extra = 50_000, 100
    source = tmp_path / "wide.csv"
    values = ",x" * extra
    source.write_text(
        REQUIRED
        + "".join(f",c{i}" for i in range(extra))
        + "\n"
        + "".join(f"{n},n{n},A,20,1,true,2026-01-01T00:00:00{values}\n" for n in range(1, rows + 1))
    )
    files = RunFiles(tmp_path / "run")
    work.generate(
        files, record_count=rows, seed=1, batch_rows=rows, source=work.InputSource(source, "csv")
    )
    counts = [getattr(work, stage)(files).records_out for stage in ("ingest", "process")]
    counts.append(work.transform(files).records_out)
    counts.append(work.export(files).records_out)
    assert counts == [rows] * 4
    # 1,665 bytes a row (ingested), 1,673 with total_value, 1,714 with the transform's columns
    # the input converted (app/pipeline/input_files/inputs.py), with its checks' marker column
    assert row_group_sizes(files.raw) == [19_418, 19_418, 11_164]
    assert row_group_sizes(files.ingested) == [20_152, 20_152, 9_696]
    assert row_group_sizes(files.processed) == [20_056, 20_056, 9_888]
    assert row_group_sizes(files.results) == [19_576, 19_576, 10_848]
    download = pl.read_csv(converted(files.results, "csv"), infer_schema=False)
    assert download.shape == (rows, 7 + extra + 6)
    assert download["id"].to_list() == [str(n) for n in range(1, rows + 1)]
    assert download["c99"].unique().to_list() == ["x"]
