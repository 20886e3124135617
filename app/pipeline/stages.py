"""Pure Polars transformations for the five pipeline stages (no I/O beyond Parquet writing)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

CATEGORIES: tuple[str, ...] = ("A", "B", "C", "D")
DISCOUNT_FACTORS: dict[str, float] = {"A": 0.90, "B": 0.85, "C": 0.80}
DEFAULT_DISCOUNT = 0.95
HIGH_VALUE_THRESHOLD = 5000.0
PREMIUM_THRESHOLD = 50_000.0
VALUE_RANGE: tuple[float, float] = (10.0, 1000.0)
QUANTITY_RANGE: tuple[int, int] = (1, 100)
ACTIVE_PROBABILITY = 0.8
EPOCH = datetime(2026, 1, 1)
_YEAR_SECONDS = 365 * 24 * 60 * 60

REQUIRED_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "name": pl.String(),
    "category": pl.String(),
    "value": pl.Float64(),
    "quantity": pl.Int64(),
    "is_active": pl.Boolean(),
    "created_at": pl.Datetime("us"),
}

REJECT_REASON = "reject_reason"
_BOOL_STRINGS: dict[str, bool] = {
    "true": True,
    "t": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "n": False,
    "0": False,
}


# --------------------------------------------------------------------------- generate


def generate_batch(start_id: int, size: int, *, seed: int) -> pl.DataFrame:
    """Build `size` synthetic records with ids from start_id; deterministic in (seed, start_id)."""
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    rng = np.random.default_rng([seed, start_id])
    ids = np.arange(start_id, start_id + size, dtype=np.int64)
    categories = np.asarray(CATEGORIES)[rng.integers(0, len(CATEGORIES), size)]
    values = np.round(rng.uniform(VALUE_RANGE[0], VALUE_RANGE[1], size), 2)
    quantities = rng.integers(QUANTITY_RANGE[0], QUANTITY_RANGE[1] + 1, size, dtype=np.int64)
    is_active = rng.random(size) < ACTIVE_PROBABILITY
    offsets = rng.integers(0, _YEAR_SECONDS, size).astype("timedelta64[s]")
    created_at = np.datetime64(EPOCH, "us") + offsets
    return pl.DataFrame(
        {
            "id": pl.Series(ids, dtype=pl.Int64),
            "category": pl.Series(categories, dtype=pl.String),
            "value": pl.Series(values, dtype=pl.Float64),
            "quantity": pl.Series(quantities, dtype=pl.Int64),
            "is_active": pl.Series(is_active, dtype=pl.Boolean),
            "created_at": pl.Series(created_at).cast(pl.Datetime("us")),
        }
    ).select(
        "id",
        pl.format("record-{}", pl.col("id")).alias("name"),
        "category",
        "value",
        "quantity",
        "is_active",
        "created_at",
    )


def write_generated(
    out_dir: Path, record_count: int, *, seed: int, batch_rows: int = 1_000_000
) -> list[Path]:
    """Write ids 1..record_count as part-NNNNN.parquet; deterministic per (seed, batch_rows)."""
    # Each batch seeds its own RNG from (seed, start_id), so changing batch_rows changes the data.
    if record_count < 0:
        raise ValueError(f"record_count must be >= 0, got {record_count}")
    if batch_rows <= 0:
        raise ValueError(f"batch_rows must be > 0, got {batch_rows}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for index in range(math.ceil(record_count / batch_rows)):
        start = index * batch_rows
        size = min(batch_rows, record_count - start)
        path = out_dir / f"part-{index:05d}.parquet"
        generate_batch(start + 1, size, seed=seed).write_parquet(path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- validate


def missing_columns(schema: pl.Schema) -> list[str]:
    """List required column names absent from `schema`, in REQUIRED_COLUMNS order."""
    return [name for name in REQUIRED_COLUMNS if name not in schema]


def _cast(name: str, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Lenient cast of one column (unparseable -> null), covering string casts Polars lacks."""
    col = pl.col(name)
    if isinstance(source, pl.String) and isinstance(target, pl.Boolean):
        lowered = col.str.strip_chars().str.to_lowercase()
        return lowered.replace_strict(_BOOL_STRINGS, default=None, return_dtype=pl.Boolean)
    if isinstance(source, pl.String) and isinstance(target, pl.Datetime):
        return col.str.strip_chars().str.to_datetime(time_unit="us", strict=False)
    if isinstance(source, pl.Datetime) and source.time_zone is not None:
        return col.dt.replace_time_zone(None).cast(target, strict=False)
    return col.cast(target, strict=False)


def validate(lf: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Cast required columns and split rows into (valid, rejects); rejects get a reject_reason."""
    schema = lf.collect_schema()
    missing = missing_columns(schema)
    if missing:
        raise ValueError(f"missing required columns: {', '.join(missing)}")
    casts = [
        _cast(name, schema[name], dtype).alias(name) for name, dtype in REQUIRED_COLUMNS.items()
    ]
    value, quantity = pl.col("value"), pl.col("quantity")
    reason = (
        pl.when(pl.col("id").is_null())
        .then(pl.lit("null id"))
        .when(value.is_null())
        .then(pl.lit("unparseable value"))
        .when(~value.is_between(*VALUE_RANGE))
        .then(pl.lit(f"value out of range [{VALUE_RANGE[0]:g}, {VALUE_RANGE[1]:g}]"))
        .when(quantity.is_null())
        .then(pl.lit("unparseable quantity"))
        .when(~quantity.is_between(*QUANTITY_RANGE))
        .then(pl.lit(f"quantity out of range [{QUANTITY_RANGE[0]}, {QUANTITY_RANGE[1]}]"))
        .when(~pl.col("category").is_in(CATEGORIES).fill_null(False))
        .then(pl.lit("unknown category"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    # Duplicates are judged among rows that passed every other check, so the first
    # *otherwise valid* occurrence of an id is the one kept.
    candidate_id = pl.when(pl.col(REJECT_REASON).is_null()).then(pl.col("id"))
    duplicate = candidate_id.is_not_null() & ~candidate_id.is_first_distinct()
    checked = (
        lf.with_columns(casts)
        .with_columns(reason.alias(REJECT_REASON))
        .with_columns(
            pl.when(duplicate)
            .then(pl.lit("duplicate id"))
            .otherwise(pl.col(REJECT_REASON))
            .alias(REJECT_REASON)
        )
    )
    valid = checked.filter(pl.col(REJECT_REASON).is_null()).drop(REJECT_REASON)
    rejects = checked.filter(pl.col(REJECT_REASON).is_not_null())
    return valid, rejects


# --------------------------------------------------------------------------- process / transform


def process(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add total_value = value * quantity as Float64."""
    return lf.with_columns(
        (pl.col("value").cast(pl.Float64) * pl.col("quantity"))
        .cast(pl.Float64)
        .alias("total_value")
    )


def transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add value flags, tier, per-category average (group_by + join, streamable) and discounts."""
    total = pl.col("total_value")
    category_avg = lf.group_by("category").agg(total.mean().alias("category_avg_total_value"))
    discount = pl.col("category").replace_strict(
        DISCOUNT_FACTORS, default=DEFAULT_DISCOUNT, return_dtype=pl.Float64
    )
    return (
        lf.join(category_avg, on="category", how="left", nulls_equal=True, maintain_order="left")
        .with_columns(
            (total > HIGH_VALUE_THRESHOLD).alias("is_high_value"),
            pl.when(total > PREMIUM_THRESHOLD)
            .then(pl.lit("premium"))
            .when(total > HIGH_VALUE_THRESHOLD)
            .then(pl.lit("standard"))
            .otherwise(pl.lit("basic"))
            .alias("tier"),
            discount.alias("discount_factor"),
        )
        .with_columns((total * pl.col("discount_factor")).alias("discounted_value"))
    )


# --------------------------------------------------------------------------- summarize


def summarize(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Aggregate transformed rows to one row per category, sorted by category."""
    return (
        lf.group_by("category")
        .agg(
            pl.len().cast(pl.Int64).alias("records"),
            pl.col("total_value").sum().alias("total_value"),
            pl.col("total_value").mean().alias("avg_total_value"),
            pl.col("is_high_value").sum().cast(pl.Int64).alias("high_value_records"),
            pl.col("discounted_value").sum().alias("discounted_value"),
        )
        .sort("category")
    )
