"""Exact-value unit tests for the pure pipeline stages in app.pipeline.stages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from app.pipeline.stages import (
    AVERAGE,
    DEFAULT_DISCOUNT,
    DISCOUNT_FACTORS,
    REQUIRED_COLUMNS,
    category_averages,
    missing_columns,
    process,
    summarize,
    transform,
    validate,
)

TS = datetime(2026, 3, 1, 12, 0, 0)


def _raw(rows: list[dict[str, Any]]) -> pl.LazyFrame:
    """Build a lazy frame of raw records, filling unspecified required fields with valid values."""
    base: dict[str, Any] = {
        "id": 1,
        "name": "n",
        "category": "A",
        "value": 10.0,
        "quantity": 1,
        "is_active": True,
        "created_at": TS,
    }
    return pl.LazyFrame([{**base, **row} for row in rows], infer_schema_length=None)


def _split(rows: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    valid, rejects = validate(_raw(rows))
    return valid.collect(), rejects.collect()


def _enriched(rows: list[tuple[str, float, int]]) -> pl.DataFrame:
    """Run process + transform over (category, value, quantity) rows."""
    lf = pl.LazyFrame(
        rows,
        schema={"category": pl.String, "value": pl.Float64, "quantity": pl.Int64},
        orient="row",
    )
    return transform(process(lf)).collect()


# --------------------------------------------------------------------------- process


def test_process_total_value() -> None:
    lf = pl.LazyFrame({"value": [10.5, 2.0, 1000.0], "quantity": [2, 3, 100]})
    out = process(lf).collect()
    assert out.schema["total_value"] == pl.Float64
    assert out["total_value"].to_list() == [21.0, 6.0, 100_000.0]


# --------------------------------------------------------------------------- transform


def test_transform_high_value_and_tier_thresholds() -> None:
    out = _enriched(
        [("A", 50.0, 100), ("A", 500.001, 10), ("A", 500.0, 100), ("A", 500.005, 100), ("A", 10, 1)]
    )
    assert out["total_value"].to_list() == pytest.approx([5000.0, 5000.01, 50000.0, 50000.5, 10.0])
    assert out["is_high_value"].to_list() == [False, True, True, True, False]
    assert out["tier"].to_list() == ["basic", "standard", "standard", "premium", "basic"]


def test_transform_category_average_keeps_row_order() -> None:
    out = _enriched([("B", 10.0, 1), ("A", 100.0, 2), ("B", 30.0, 1), ("A", 50.0, 2), ("C", 7, 1)])
    assert out["category"].to_list() == ["B", "A", "B", "A", "C"]
    assert out["total_value"].to_list() == [10.0, 200.0, 30.0, 100.0, 7.0]
    assert out["category_avg_total_value"].to_list() == [20.0, 150.0, 20.0, 150.0, 7.0]


def test_transform_takes_given_averages_as_they_are() -> None:
    # the Dask fan-out passes averages combined from its partitions; null is a category too
    frame = pl.LazyFrame(
        {"category": ["A", None, "B", "A"], "total_value": [1.0, 2.0, 3.0, 4.0]},
        schema={"category": pl.String, "total_value": pl.Float64},
    )
    assert category_averages(frame) == {"A": 2.5, None: 2.0, "B": 3.0}
    out = transform(frame, {"A": 7.5, None: 1.25}).collect()
    assert out[AVERAGE].to_list() == [7.5, 1.25, None, 7.5]
    assert transform(frame).collect()[AVERAGE].to_list() == [2.5, 2.0, 3.0, 2.5]


def test_transform_of_no_rows_is_no_rows() -> None:
    empty = pl.LazyFrame(schema={"category": pl.String, "total_value": pl.Float64})
    out = transform(empty).collect()
    assert (out.height, out.columns[:3]) == (0, ["category", "total_value", AVERAGE])


def test_transform_discount_factors() -> None:
    out = _enriched(
        [("A", 100.0, 1), ("B", 100.0, 1), ("C", 100.0, 1), ("D", 100.0, 1), ("Q", 100, 1)]
    )
    assert DISCOUNT_FACTORS == {"A": 0.90, "B": 0.85, "C": 0.80}
    assert DEFAULT_DISCOUNT == 0.95
    assert out["discount_factor"].to_list() == [0.90, 0.85, 0.80, 0.95, 0.95]
    assert out["discounted_value"].to_list() == pytest.approx([90.0, 85.0, 80.0, 95.0, 95.0])


# --------------------------------------------------------------------------- summarize


def test_summarize_exact_numbers() -> None:
    enriched = _enriched(
        [("B", 100.0, 60), ("A", 10.0, 10), ("A", 1000.0, 100), ("B", 20.0, 5), ("A", 30.0, 1)]
    )
    out = summarize(enriched.lazy()).collect()
    expected = pl.DataFrame(
        {
            "category": ["A", "B"],
            "records": [3, 2],
            "total_value": [100_130.0, 6100.0],
            "avg_total_value": [100_130.0 / 3, 3050.0],
            "high_value_records": [1, 1],
            "discounted_value": [100_130.0 * 0.90, 6100.0 * 0.85],
        },
        schema={
            "category": pl.String,
            "records": pl.Int64,
            "total_value": pl.Float64,
            "avg_total_value": pl.Float64,
            "high_value_records": pl.Int64,
            "discounted_value": pl.Float64,
        },
    )
    assert_frame_equal(out, expected)


# --------------------------------------------------------------------------- validate


def test_validate_clean_rows_pass_with_required_types() -> None:
    valid, rejects = _split(
        [{"id": 1}, {"id": 2, "category": "D", "value": 1000.0, "quantity": 100}]
    )
    assert valid["id"].to_list() == [1, 2]
    assert rejects.height == 0
    assert "reject_reason" in rejects.columns
    assert "reject_reason" not in valid.columns
    assert dict(valid.schema) == REQUIRED_COLUMNS


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"id": None}, "null id"),
        ({"value": None}, "unparseable value"),
        ({"value": "abc"}, "unparseable value"),
        ({"value": 9.99}, "value out of range [10, 1000]"),
        ({"value": 1000.01}, "value out of range [10, 1000]"),
        ({"value": "nan"}, "value out of range [10, 1000]"),
        ({"quantity": None}, "unparseable quantity"),
        ({"quantity": "lots"}, "unparseable quantity"),
        ({"quantity": 0}, "quantity out of range [1, 100]"),
        ({"quantity": 101}, "quantity out of range [1, 100]"),
        ({"category": "E"}, "unknown category (must be A, B, C or D)"),
        ({"category": None}, "unknown category (must be A, B, C or D)"),
    ],
)
def test_validate_reject_reason(override: dict[str, Any], reason: str) -> None:
    as_text = {k: (None if v is None else str(v)) for k, v in override.items()}
    for row in (override, as_text):
        valid, rejects = _split([{"id": 1}, {"id": 2, **row}])
        assert valid["id"].to_list() == [1]
        assert rejects["reject_reason"].to_list() == [reason]


def test_validate_reads_a_category_with_spaces_around_it_and_rejects_keep_it_as_sent() -> None:
    """As spaces around a number or a boolean are no part of it ("1, a, A, 10" as typed)."""
    valid, rejects = _split(
        [
            {"id": 1, "category": " A"},
            {"id": 2, "category": "B  "},
            {"id": 3, "category": "\tC "},
            {"id": 4, "category": " a"},
            {"id": 5, "category": " D", "value": "x"},
        ]
    )
    assert valid["category"].to_list() == ["A", "B", "C"]
    assert rejects["category"].to_list() == [" a", " D"]
    assert rejects["reject_reason"].to_list() == [
        "unknown category (must be A, B, C or D)",
        "unparseable value",
    ]


def test_validate_first_matching_reason_wins() -> None:
    rows: list[dict[str, Any]] = [
        {"id": None, "value": "x", "quantity": 0, "category": "Z"},
        {"id": 2, "value": "x", "quantity": 0, "category": "Z"},
        {"id": 3, "value": 5.0, "quantity": None, "category": "Z"},
        {"id": 4, "quantity": None, "category": "Z"},
        {"id": 5, "quantity": 0, "category": "Z"},
    ]
    _, rejects = _split(rows)
    assert rejects["reject_reason"].to_list() == [
        "null id",
        "unparseable value",
        "value out of range [10, 1000]",
        "unparseable quantity",
        "quantity out of range [1, 100]",
    ]


def test_validate_duplicate_ids_keep_first() -> None:
    rows: list[dict[str, Any]] = [
        {"id": 7, "name": "first"},
        {"id": 8},
        {"id": 7, "name": "second"},
        {"id": 7},
    ]
    valid, rejects = _split(rows)
    assert valid["id"].to_list() == [7, 8]
    assert valid["name"].to_list() == ["first", "n"]
    assert rejects["name"].to_list() == ["second", "n"]
    assert rejects["reject_reason"].to_list() == ["duplicate id", "duplicate id"]


def test_validate_duplicate_judged_among_otherwise_valid_rows() -> None:
    valid, rejects = _split([{"id": 7, "category": "Z"}, {"id": 7, "name": "ok"}])
    assert valid["name"].to_list() == ["ok"]
    assert rejects["reject_reason"].to_list() == ["unknown category (must be A, B, C or D)"]


def test_validate_keeps_extra_columns_in_both_outputs() -> None:
    valid, rejects = _split([{"id": 1, "note": "keep"}, {"id": None, "note": "also"}])
    assert valid.columns == [*REQUIRED_COLUMNS, "note"]
    assert rejects.columns == [*REQUIRED_COLUMNS, "note", "reject_reason"]
    assert valid["note"].to_list() == ["keep"]
    assert rejects["note"].to_list() == ["also"]


def test_validate_keeps_unicode_names() -> None:
    names = ["Zoë Ünïcødé", "日本語テキスト", "emoji 🚀✨"]
    valid, _ = _split([{"id": i, "name": name} for i, name in enumerate(names)])
    assert valid["name"].to_list() == names


def test_validate_casts_string_columns() -> None:
    rows = [
        {"id": "1", "value": "12.5", "quantity": "3", "is_active": "false"},
        {"id": "2", "is_active": "TRUE", "created_at": "2026-02-03 04:05:06"},
        {"id": "3", "is_active": " ", "created_at": ""},  # blank: missing, not wrong
        {"id": "4", "is_active": "maybe"},
        {"id": "5", "created_at": "not a date"},
        {"id": "x"},
    ]
    as_text = [
        {k: str(v) for k, v in {"created_at": "2026-03-01 12:00:00", **r}.items()} for r in rows
    ]
    valid, rejects = _split(as_text)
    assert valid["value"].to_list() == [12.5, 10.0, 10.0]
    assert valid["quantity"].to_list() == [3, 1, 1]
    assert valid["is_active"].to_list() == [False, True, None]
    assert valid["created_at"].to_list() == [TS, datetime(2026, 2, 3, 4, 5, 6), None]
    assert rejects["reject_reason"].to_list() == [
        "unparseable is_active (true or false)",
        "unparseable created_at (ISO 8601, such as 2026-03-01T10:00:00Z)",
        "unparseable id",
    ]


def test_validate_takes_whole_floats_as_integers_and_rejects_fractions() -> None:
    """A Parquet file may hold ids and quantities as floats: 3.0 is 3, but 2.7 is no quantity (a
    cast once cut it to 2, and id 1.9 became a duplicate of id 1), as "2.7" in a CSV is not."""
    nan, inf = float("nan"), float("inf")
    rows = [
        {"id": 1.0, "quantity": 3.0},
        {"id": 2.0, "quantity": 2.7},
        {"id": 1.9, "quantity": 1.0},
        {"id": 4.0, "quantity": nan},
        {"id": 5.0, "quantity": inf},
        {"id": 6.0, "quantity": None},
    ]
    valid, rejects = _split(rows)
    assert valid.select("id", "quantity").rows() == [(1, 3)]
    assert valid.schema["id"] == pl.Int64 and valid.schema["quantity"] == pl.Int64
    assert rejects["reject_reason"].to_list() == [
        "unparseable quantity",
        "unparseable id",
        "unparseable quantity",
        "unparseable quantity",
        "unparseable quantity",
    ]
    # as sent (NaN filled with -1 only to compare it)
    assert rejects["id"].to_list() == [2.0, 1.9, 4.0, 5.0, 6.0]
    assert rejects["quantity"].fill_nan(-1.0).to_list() == [2.7, 1.0, -1.0, inf, None]


def test_validate_reads_iso_timestamps_with_or_without_an_offset() -> None:
    """Value by value: a file may mix them. Offsets are converted to UTC; the result is naive."""
    stamps = {
        "2026-03-01T10:00:00Z": datetime(2026, 3, 1, 10),
        "2026-03-01T10:00:00+02:00": datetime(2026, 3, 1, 8),
        "2026-03-01 10:00:00.5-05:00": datetime(2026, 3, 1, 15, 0, 0, 500_000),
        "2026-03-01 10:00:00": datetime(2026, 3, 1, 10),
        "2026-03-01T10:00:00.123456": datetime(2026, 3, 1, 10, 0, 0, 123_456),
        " 2026-03-01 ": datetime(2026, 3, 1),
    }
    valid, rejects = _split([{"id": str(i), "created_at": t} for i, t in enumerate(stamps)])
    assert rejects.height == 0
    assert valid["created_at"].to_list() == list(stamps.values())
    _, impossible = _split([{"id": "1", "created_at": "2026-02-30"}])
    assert impossible["reject_reason"].to_list() == [
        "unparseable created_at (ISO 8601, such as 2026-03-01T10:00:00Z)"
    ]


def test_missing_columns() -> None:
    schema = pl.Schema({"id": pl.Int64, "value": pl.String, "other": pl.Int8})
    assert missing_columns(schema) == ["name", "category", "quantity", "is_active", "created_at"]
    assert missing_columns(pl.Schema(REQUIRED_COLUMNS)) == []
    with pytest.raises(ValueError, match="missing required columns"):
        validate(pl.LazyFrame(schema=schema))
