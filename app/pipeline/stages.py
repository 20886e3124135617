"""Pure Polars transformations of the pipeline stages after generate (app/pipeline/generator.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

import polars as pl

from app.pipeline.input_files import casts

CATEGORIES: tuple[str, ...] = ("A", "B", "C", "D")
# the reject reason names the accepted ones, as the range reasons name their range
UNKNOWN_CATEGORY = f"unknown category (must be {', '.join(CATEGORIES[:-1])} or {CATEGORIES[-1]})"
DISCOUNT_FACTORS: dict[str, float] = {"A": 0.90, "B": 0.85, "C": 0.80}
DEFAULT_DISCOUNT = 0.95
HIGH_VALUE_THRESHOLD = 5000.0
PREMIUM_THRESHOLD = 50_000.0
VALUE_RANGE: tuple[float, float] = (10.0, 1000.0)
QUANTITY_RANGE: tuple[int, int] = (1, 100)

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
AVERAGE = "category_avg_total_value"
ROW_INDEX = "__row"
INPUT_PROBLEM = "__input_problem"  # a reject reason the reading of an input file found (inputs)
_TEXT = "__text_"  # prefix of validate's working columns: a column's text before its cast
DEDUP_BUCKET_ROWS = 4_000_000  # ids counted at once while looking for duplicates
_HASH_SEED = 20261125


# --------------------------------------------------------------------------- validate


def missing_columns(schema: pl.Schema) -> list[str]:
    """List required column names absent from `schema`, in REQUIRED_COLUMNS order."""
    return [name for name in REQUIRED_COLUMNS if name not in schema]


def duplicate_rows(checked: pl.LazyFrame, *, bucket_rows: int = DEDUP_BUCKET_ROWS) -> pl.Series:
    """Row numbers of otherwise-valid rows whose id an earlier otherwise-valid row already has.

    Bounded memory: ids are first checked for repeats alone — one streaming pass when they are
    strictly increasing (then there are none), else a streaming count per id, hash-partitioned
    into buckets of about `bucket_rows` ids; only rows carrying a repeated id are looked at again.
    """
    ids = checked.select("id").filter(pl.col("id").is_not_null())
    # compared, not subtracted: diff() overflowed on ids spanning Int64 (hashes), and passed them
    increasing = ids.select((pl.col("id") > pl.col("id").shift(1)).all())
    if increasing.collect(engine="streaming").item():
        return pl.Series(ROW_INDEX, [], dtype=pl.get_index_type())
    rows = int(ids.select(pl.len()).collect(engine="streaming").item())
    buckets = max(1, math.ceil(rows / bucket_rows))
    repeated: list[pl.Series] = []
    for bucket in range(buckets):
        part = ids
        if buckets > 1:
            part = part.filter(pl.col("id").hash(seed=_HASH_SEED) % buckets == bucket)
        counts = part.group_by("id").len().filter(pl.col("len") > 1)
        found = counts.collect(engine="streaming")["id"]
        if found.len():
            repeated.append(found)
    if not repeated:
        return pl.Series(ROW_INDEX, [], dtype=pl.get_index_type())
    candidates = (
        checked.with_row_index(ROW_INDEX)
        .filter(pl.col(REJECT_REASON).is_null() & pl.col("id").is_in(pl.concat(repeated).implode()))
        .select(ROW_INDEX, "id")
    )
    return candidates.filter(~pl.col("id").is_first_distinct()).collect()[ROW_INDEX]


def _unread_created_at(source: pl.DataType) -> str:
    """Why a created_at was sent and cannot be a timestamp: unparseable text, or a Parquet
    timestamp (or date) past what a microsecond timestamp holds, which became null unsaid."""
    if isinstance(source, pl.String):
        return "unparseable created_at (ISO 8601, such as 2026-03-01T10:00:00Z)"
    return "created_at out of range (years -290,000 to 290,000)"


def validate(
    lf: pl.LazyFrame, *, bucket_rows: int = DEDUP_BUCKET_ROWS
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Cast required columns and split rows into (valid, rejects); rejects get a reject_reason.

    Streams, except one bounded pass that finds duplicate ids (see duplicate_rows).
    """
    schema = lf.collect_schema()
    missing = missing_columns(schema)
    if missing:
        raise ValueError(f"missing required columns: {', '.join(missing)}")
    typed = [
        _typed(name, schema[name], dtype).alias(name) for name, dtype in REQUIRED_COLUMNS.items()
    ]
    # columns read as text (CSV, JSON Lines), and floats or decimals cast to integers, are kept
    # beside the cast: a value the cast made null was unparseable (blank text is missing), and
    # rejects show what was sent (a category's spaces too)
    texts = [
        name for name, dtype in REQUIRED_COLUMNS.items() if casts.keeps_sent(schema[name], dtype)
    ] + (["category"] if isinstance(schema["category"], pl.String) else [])

    def unparseable(name: str) -> pl.Expr:
        if name not in texts:
            return pl.lit(False)
        original = pl.col(_TEXT + name)
        given = (
            original.str.strip_chars().str.len_chars().gt(0).fill_null(False)
            if isinstance(schema[name], pl.String)
            else original.is_not_null()
        )
        return given & pl.col(name).is_null()

    value, quantity = pl.col("value"), pl.col("quantity")
    reason = (
        pl.when(unparseable("id"))
        .then(pl.lit("unparseable id"))
        .when(pl.col("id").is_null())
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
        .then(pl.lit(UNKNOWN_CATEGORY))
        .when(unparseable("is_active"))
        .then(pl.lit("unparseable is_active (true or false)"))
        .when(unparseable("created_at"))
        .then(pl.lit(_unread_created_at(schema["created_at"])))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    own = [INPUT_PROBLEM] if INPUT_PROBLEM in schema else []
    if own:
        reason = pl.coalesce(reason, pl.col(INPUT_PROBLEM))
    texts_kept = [_TEXT + name for name in texts]
    checked = (
        lf.with_columns(pl.col(name).alias(_TEXT + name) for name in texts)
        .with_columns(typed)
        .with_columns(reason.alias(REJECT_REASON))
    )
    # Duplicates are judged among rows that passed every other check, so the first
    # *otherwise valid* occurrence of an id is the one kept.
    duplicates = duplicate_rows(checked, bucket_rows=bucket_rows)
    if duplicates.len():
        checked = (
            checked.with_row_index(ROW_INDEX)
            .with_columns(
                pl.when(pl.col(ROW_INDEX).is_in(duplicates.implode()))
                .then(pl.lit("duplicate id"))
                .otherwise(pl.col(REJECT_REASON))
                .alias(REJECT_REASON)
            )
            .drop(ROW_INDEX)
        )
    valid = checked.filter(pl.col(REJECT_REASON).is_null()).drop(REJECT_REASON, *texts_kept, *own)
    rejects = (
        checked.filter(pl.col(REJECT_REASON).is_not_null())
        .with_columns(pl.col(_TEXT + name).alias(name) for name in texts)
        .drop(*texts_kept, *own)
    )
    return valid, rejects


def _typed(name: str, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Column `name` as the stages take it: cast, and a category without the spaces around it
    (" A" is A), as spaces around a number, a boolean or a timestamp are no part of it."""
    typed = casts.cast(name, source, target)
    return typed.str.strip_chars() if name == "category" else typed


# --------------------------------------------------------------------------- process / transform


def process(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add total_value = value * quantity as Float64."""
    return lf.with_columns(
        (pl.col("value").cast(pl.Float64) * pl.col("quantity"))
        .cast(pl.Float64)
        .alias("total_value")
    )


CategoryAverages = dict[str | None, float | None]


def _lookup(
    key: pl.Expr,
    mapping: Mapping[str, Any] | Mapping[str | None, Any],
    default: Any,
    dtype: type[pl.DataType],
) -> pl.Expr:
    """mapping[key] else default, as a when/then chain: unlike replace_strict it streams."""
    if not mapping:  # no rows, no categories: a chain needs at least one `when`
        return pl.lit(default, dtype=dtype)
    chain: Any = pl
    for name, result in mapping.items():
        matches = key.is_null() if name is None else key == name
        chain = chain.when(matches).then(pl.lit(result, dtype=dtype))
    return cast(pl.Expr, chain.otherwise(pl.lit(default, dtype=dtype)))


def category_averages(lf: pl.LazyFrame) -> CategoryAverages:
    """Mean total_value per category: the one figure transform needs from all the rows."""
    means = lf.group_by("category").agg(pl.col("total_value").mean())
    return dict(means.collect(engine="streaming").iter_rows())


def transform(lf: pl.LazyFrame, averages: CategoryAverages | None = None) -> pl.LazyFrame:
    """Add value flags, tier, per-category average and discounts.

    The averages (computed first from `lf` unless given, e.g. combined from a cluster's
    partitions) go into the query as constants: a pass over two columns, then one streaming pass
    over the rows with no join.
    """
    if averages is None:
        averages = category_averages(lf)
    total, category = pl.col("total_value"), pl.col("category")
    discount = _lookup(category, DISCOUNT_FACTORS, DEFAULT_DISCOUNT, pl.Float64)
    return lf.with_columns(
        _lookup(category, averages, None, pl.Float64).alias(AVERAGE),
        (total > HIGH_VALUE_THRESHOLD).alias("is_high_value"),
        pl.when(total > PREMIUM_THRESHOLD)
        .then(pl.lit("premium"))
        .when(total > HIGH_VALUE_THRESHOLD)
        .then(pl.lit("standard"))
        .otherwise(pl.lit("basic"))
        .alias("tier"),
        discount.alias("discount_factor"),
    ).with_columns((total * pl.col("discount_factor")).alias("discounted_value"))


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
