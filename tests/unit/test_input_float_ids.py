"""Parquet float id columns (app/pipeline/input_files/casts.py): a float at or past 2**53 (2**24 in a Float32,
2**11 in a Float16) stands for more than one whole number, so its id is rejected as in the text
formats; integer columns stay exact."""

from pathlib import Path

import polars as pl
import pytest

from app.pipeline import work
from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles


def _run(tmp_path: Path, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run's valid rows and rejects of a Parquet file with these ids, checked as at upload."""
    rows = ids.len()
    source = tmp_path / "in.parquet"
    pl.DataFrame(
        {
            "id": ids,
            "name": [f"n{i}" for i in range(rows)],
            "category": ["A"] * rows,
            "value": [12.5] * rows,
            "quantity": [3] * rows,
            "is_active": [True] * rows,
            "created_at": ["2026-01-01"] * rows,
        }
    ).write_parquet(source)
    inputs.check(source, "parquet", tmp_path / "scratch")
    files = RunFiles(tmp_path / "run")
    work.generate(
        files, record_count=1, seed=1, batch_rows=1, source=work.InputSource(source, "parquet")
    )
    work.ingest(files)
    return pl.read_parquet(files.ingested), pl.read_parquet(files.rejects)


@pytest.mark.parametrize(
    ("dtype", "limit"), [(pl.Float64, 2**53), (pl.Float32, 2**24), (pl.Float16, 2**11)]
)
def test_float_ids_at_or_past_the_last_exact_whole_number_are_rejected(
    tmp_path: Path, dtype: type[pl.DataType], limit: int
) -> None:
    """They were taken as the float's value: 2**53 + 1 is stored as 2**53, so two ids written
    9007199254740992 and 9007199254740993 became one (and then a duplicate)."""
    sent = [1.0, limit - 1.0, float(limit), limit + 2.0, 1 - float(limit), -float(limit), 2.5]
    valid, rejects = _run(tmp_path, pl.Series(sent, dtype=dtype))
    assert valid.select("id", "name").rows() == [(1, "n0"), (limit - 1, "n1"), (1 - limit, "n4")]
    assert rejects.schema["id"] == dtype  # kept as sent
    assert rejects.select(pl.col("id").cast(pl.Float64), "name", "reject_reason").rows() == [
        (float(limit), "n2", "unparseable id"),
        (limit + 2.0, "n3", "unparseable id"),
        (-float(limit), "n5", "unparseable id"),
        (2.5, "n6", "unparseable id"),
    ]


def test_integer_id_columns_stay_exact_past_2_53(tmp_path: Path) -> None:
    sent = [2**53, 2**53 + 1, 2**63 - 1, -(2**53) - 1]
    valid, rejects = _run(tmp_path, pl.Series(sent, dtype=pl.Int64))
    assert (valid["id"].to_list(), rejects.height) == (sent, 0)


def test_uint64_ids_are_exact_up_to_int64(tmp_path: Path) -> None:
    sent = [2**53 + 1, 2**63 - 1, 2**63]
    valid, rejects = _run(tmp_path, pl.Series(sent, dtype=pl.UInt64))
    assert valid["id"].to_list() == [2**53 + 1, 2**63 - 1]
    assert rejects.select("id", "reject_reason").rows() == [(2**63, "unparseable id")]
