"""(b) of bench/data.py: the raw-engine anchor — one hand-written Polars lazy query from the
generated records to the pipeline's three outputs, with no intermediate files."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from app.pipeline import generator


def generated(records: int, batch_rows: int, *, seed: int) -> pl.LazyFrame:
    """The same records the generate stage writes, built in memory on as many threads."""

    def batch(start: int) -> pl.LazyFrame:
        size = min(batch_rows, records - start)
        return generator.generate_batch(start + 1, size, seed=seed).lazy()

    with ThreadPoolExecutor(max_workers=generator.threads()) as pool:
        batches = list(pool.map(batch, range(0, records, batch_rows)))
    return pl.concat(batches or [generator.generate_batch(1, 0, seed=seed).lazy()])


def engine_query(raw: pl.LazyFrame, out: Path) -> None:
    """Validate, process, transform and summarise in one hand-written lazy query, three sinks."""
    value, quantity, category = pl.col("value"), pl.col("quantity"), pl.col("category")
    reason = (
        pl.when(pl.col("id").is_null())
        .then(pl.lit("null id"))
        .when(value.is_null())
        .then(pl.lit("unparseable value"))
        .when(~value.is_between(10.0, 1000.0))
        .then(pl.lit("value out of range [10, 1000]"))
        .when(quantity.is_null())
        .then(pl.lit("unparseable quantity"))
        .when(~quantity.is_between(1, 100))
        .then(pl.lit("quantity out of range [1, 100]"))
        .when(~category.is_in(["A", "B", "C", "D"]).fill_null(False))
        .then(pl.lit("unknown category"))
    )
    checked = raw.with_columns(reason.alias("reject_reason"))
    candidate = pl.when(pl.col("reject_reason").is_null()).then(pl.col("id"))
    checked = checked.with_columns(
        pl.when(candidate.is_not_null() & ~candidate.is_first_distinct())
        .then(pl.lit("duplicate id"))
        .otherwise(pl.col("reject_reason"))
        .alias("reject_reason")
    )
    total = pl.col("total_value")
    results = (
        checked.filter(pl.col("reject_reason").is_null())
        .drop("reject_reason")
        .with_columns((value * quantity).alias("total_value"))
        .with_columns(
            total.mean().over("category").alias("category_avg_total_value"),
            (total > 5000.0).alias("is_high_value"),
            pl.when(total > 50_000.0)
            .then(pl.lit("premium"))
            .when(total > 5000.0)
            .then(pl.lit("standard"))
            .otherwise(pl.lit("basic"))
            .alias("tier"),
            category.replace_strict(
                {"A": 0.90, "B": 0.85, "C": 0.80}, default=0.95, return_dtype=pl.Float64
            ).alias("discount_factor"),
        )
        .with_columns((total * pl.col("discount_factor")).alias("discounted_value"))
    )
    summary = (
        results.group_by("category")
        .agg(
            pl.len().cast(pl.Int64).alias("records"),
            total.sum().alias("total_value"),
            total.mean().alias("avg_total_value"),
            pl.col("is_high_value").sum().cast(pl.Int64).alias("high_value_records"),
            pl.col("discounted_value").sum().alias("discounted_value"),
        )
        .sort("category")
    )
    rejects = checked.filter(pl.col("reject_reason").is_not_null())
    (out / "output").mkdir(parents=True, exist_ok=True)
    final: dict[str, Any] = {"compression": "zstd", "compression_level": 1}  # as the pipeline's
    pl.collect_all(
        [
            results.sink_parquet(out / "output" / "results.parquet", lazy=True, **final),
            summary.sink_parquet(out / "output" / "summary.parquet", lazy=True, **final),
            rejects.sink_parquet(out / "rejects.parquet", lazy=True, compression="lz4"),
        ]
    )
