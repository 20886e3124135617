"""Exact-value tests of how validate reads values that a plain cast would change: decimals, whole
numbers written N.0 past 2**53, is_active numbers, hour-only offsets; ids spanning Int64, and a
reject reason from the reading of the input (app/pipeline/input_files/casts.py, app/pipeline/stages.py)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from app.pipeline import stages
from app.pipeline.stages import REQUIRED_COLUMNS, validate

TS = datetime(2026, 3, 1, 12, 0, 0)
UNPARSEABLE_IS_ACTIVE = "unparseable is_active (true or false)"


def _frame(columns: dict[str, Any]) -> pl.LazyFrame:
    """Records with the given columns (each a list or Series), the other required ones valid."""
    rows = len(next(iter(columns.values())))
    base: dict[str, Any] = {
        "id": list(range(1, rows + 1)),
        "name": ["n"] * rows,
        "category": ["A"] * rows,
        "value": [10.0] * rows,
        "quantity": [1] * rows,
        "is_active": [True] * rows,
        "created_at": [TS] * rows,
    }
    return pl.LazyFrame({**base, **columns})


def _split(frame: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    valid, rejects = validate(frame)
    return valid.collect(), rejects.collect()


def test_decimal_ids_and_quantities_are_kept_only_when_whole() -> None:
    """A Parquet Decimal was cut by the cast: quantity 3.50 became 3, id 2.7 became 2."""
    ids = pl.Series([Decimal("1.0"), Decimal("2.7"), Decimal("3.0"), Decimal("4.0")])
    quantities = [Decimal("3.50"), Decimal("1.00"), Decimal("100.00"), None]
    frame = _frame(
        {
            "id": ids.cast(pl.Decimal(10, 1)),
            "quantity": pl.Series(quantities).cast(pl.Decimal(10, 2)),
        }
    )
    valid, rejects = _split(frame)
    assert valid.select("id", "quantity").rows() == [(3, 100)]
    assert valid.schema["id"] == pl.Int64 and valid.schema["quantity"] == pl.Int64
    assert rejects.select("id", "quantity", "reject_reason").rows() == [
        (Decimal("1.0"), Decimal("3.50"), "unparseable quantity"),
        (Decimal("2.7"), Decimal("1.00"), "unparseable id"),
        (Decimal("4.0"), None, "unparseable quantity"),
    ]


def test_duplicate_ids_spanning_int64_are_found() -> None:
    """diff() overflowed on ids from -2**63 to 2**63 - 1 (64-bit hashes), so a file appended to
    itself looked strictly increasing and no duplicate was looked for."""
    ids = np.sort(np.random.default_rng(0).integers(-(2**63), 2**63 - 1, 50, dtype=np.int64))
    twice = pl.Series(np.concatenate([ids, ids]))
    valid, rejects = _split(_frame({"id": twice, "name": [f"n{i}" for i in range(100)]}))
    assert valid["id"].to_list() == ids.tolist()
    assert valid["name"].to_list() == [f"n{i}" for i in range(50)]
    assert rejects["id"].to_list() == ids.tolist()
    assert rejects["reject_reason"].unique().to_list() == ["duplicate id"]


def test_extreme_increasing_ids_are_no_duplicates() -> None:
    ids = [-(2**63), -1, 0, 2**63 - 1]
    valid, rejects = _split(_frame({"id": ids}))
    assert (valid["id"].to_list(), rejects.height) == (ids, 0)
    valid, rejects = _split(_frame({"id": [2**63 - 1, -(2**63), 2**63 - 1]}))
    assert valid["id"].to_list() == [2**63 - 1, -(2**63)]
    assert rejects.select("id", "reject_reason").rows() == [(2**63 - 1, "duplicate id")]


def test_text_ids_past_2_53_written_n_point_0_stay_exact() -> None:
    """Through Float64, "9007199254740993.0" became 9007199254740992 (another id), and
    "9007199254740995.5" was taken as the whole 9007199254740996."""
    ids = [
        "9007199254740992",
        "9007199254740993.0",
        "9007199254740995.5",
        "-9007199254740993.00",
        "9223372036854775807.0",
        "1e3",
        "9.007199254740993e15",
        "2.5",
        "7.",
    ]
    valid, rejects = _split(_frame({"id": ids}))
    assert valid["id"].to_list() == [
        9007199254740992,
        9007199254740993,
        -9007199254740993,
        9223372036854775807,
        1000,
        7,
    ]
    assert rejects.select("id", "reject_reason").rows() == [
        ("9007199254740995.5", "unparseable id"),
        ("9.007199254740993e15", "unparseable id"),
        ("2.5", "unparseable id"),
    ]


def test_is_active_numbers_are_only_one_and_zero() -> None:
    """An integer is_active of 2 or -1 became True; text "1.0" and "0.0" were refused."""
    integers = pl.Series([1, 0, 2, -1, None], dtype=pl.Int8)
    valid, rejects = _split(_frame({"is_active": integers}))
    assert valid.select("id", "is_active").rows() == [(1, True), (2, False), (5, None)]
    assert rejects.select("id", "is_active", "reject_reason").rows() == [
        (3, 2, UNPARSEABLE_IS_ACTIVE),
        (4, -1, UNPARSEABLE_IS_ACTIVE),
    ]
    texts = ["1.0", "0.0", " 1 ", "0", "Yes", "2", "-1", "0.5", "1e0"]
    valid, rejects = _split(_frame({"is_active": texts}))
    assert valid.select("id", "is_active").rows() == [
        (1, True),
        (2, False),
        (3, True),
        (4, False),
        (5, True),
        (9, True),
    ]
    assert rejects.select("is_active", "reject_reason").rows() == [
        ("2", UNPARSEABLE_IS_ACTIVE),
        ("-1", UNPARSEABLE_IS_ACTIVE),
        ("0.5", UNPARSEABLE_IS_ACTIVE),
    ]


def test_offsets_in_hours_only_are_read() -> None:
    stamps = {
        "2026-03-01T10:00:00+05": datetime(2026, 3, 1, 5),
        "2026-03-01T10:00:00-03": datetime(2026, 3, 1, 13),
        "2026-03-01 10:00:00.25+01": datetime(2026, 3, 1, 9, 0, 0, 250_000),
        "2026-03-01T10:00-03": datetime(2026, 3, 1, 13),
        "2026-03-01T10:00:00+0530": datetime(2026, 3, 1, 4, 30),
        "2026-03-01": datetime(2026, 3, 1),
    }
    valid, rejects = _split(_frame({"created_at": list(stamps)}))
    assert rejects.height == 0
    assert valid["created_at"].to_list() == list(stamps.values())
    _, rejects = _split(_frame({"created_at": ["2026-03-01T10:00:00+5", "2026-03-01+05"]}))
    assert (
        rejects["reject_reason"].to_list()
        == ["unparseable created_at (ISO 8601, such as 2026-03-01T10:00:00Z)"] * 2
    )


def test_a_problem_the_reading_found_rejects_the_row_after_the_checks_of_validate() -> None:
    """How JSON Lines' NUL characters (unpaired surrogates) reach the rejects: the column is the
    pipeline's own, in neither output."""
    problem = [None, "NUL character in name", "NUL character in note", None]
    frame = _frame({"category": ["A", "A", "Z", "A"], stages.INPUT_PROBLEM: problem})
    valid, rejects = _split(frame)
    assert valid.columns == list(REQUIRED_COLUMNS)
    assert rejects.columns == [*REQUIRED_COLUMNS, "reject_reason"]
    assert valid["id"].to_list() == [1, 4]
    assert rejects.select("id", "reject_reason").rows() == [
        (2, "NUL character in name"),
        (3, "unknown category (must be A, B, C or D)"),
    ]


def test_a_parquet_timestamp_past_microseconds_is_rejected_not_nulled() -> None:
    """A Parquet created_at in milliseconds (or a date) far past what a microsecond timestamp
    holds became null: the row was kept, its created_at empty, nothing said."""
    far = pl.Series([2**62, -(2**62), 1_772_366_400_000], dtype=pl.Int64).cast(pl.Datetime("ms"))
    valid, rejects = _split(_frame({"created_at": far}))
    assert valid.select("id", "created_at").rows() == [(3, datetime(2026, 3, 1, 12, 0, 0))]
    assert rejects.select("id", "reject_reason").rows() == [
        (1, "created_at out of range (years -290,000 to 290,000)"),
        (2, "created_at out of range (years -290,000 to 290,000)"),
    ]
    days = pl.Series([2**31 - 1, 20_513], dtype=pl.Int32).cast(pl.Date)
    valid, rejects = _split(_frame({"created_at": days}))
    assert valid.select("id").rows() == [(2,)]
    assert rejects.select("id", "reject_reason").rows() == [
        (1, "created_at out of range (years -290,000 to 290,000)")
    ]
