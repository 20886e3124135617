"""(c) of bench/data.py: the pipeline's logic row by row in pure Python, the way the origin did it.

The origin project's tasks made each record a dict with the `random` module, wrote them to a JSON
file, read it back, and then looped over the dicts once per stage. This does the same with the
same rules as the pipeline, from the same records (app.pipeline.generator.record, the plain-Python
definition of the generated data), kept lean: one raw file in JSON Lines, one pass per stage, no
copies, and the outputs written as JSON Lines (pure Python has no Parquet writer). Only
`read_outputs`, used to compare, not timed, reads them with Polars.
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from app.pipeline import generator, stages

RESULTS, SUMMARY, REJECTS = "output/results.jsonl", "output/summary.jsonl", "rejects.jsonl"
Row = dict[str, Any]


def generate(raw: Path, records: int, *, seed: int) -> None:
    """One dict per record, written as a JSON line."""
    with raw.open("w", encoding="utf-8") as out:
        for record_id in range(1, records + 1):
            row = generator.record(record_id, seed=seed)
            row["created_at"] = row["created_at"].isoformat()
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _reason(row: Row) -> str | None:
    value, quantity = row["value"], row["quantity"]
    if row["id"] is None:
        return "null id"
    if value is None:
        return "unparseable value"
    if not 10.0 <= value <= 1000.0:
        return "value out of range [10, 1000]"
    if quantity is None:
        return "unparseable quantity"
    if not 1 <= quantity <= 100:
        return "quantity out of range [1, 100]"
    if row["category"] not in ("A", "B", "C", "D"):
        return "unknown category"
    return None


def ingest(raw: Path) -> tuple[list[Row], list[Row]]:
    """Read the records back and split them into valid rows and rejects with a reason."""
    valid: list[Row] = []
    rejects: list[Row] = []
    seen: set[int] = set()
    with raw.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            reason = _reason(row)
            if reason is None and row["id"] in seen:
                reason = "duplicate id"
            if reason is None:
                seen.add(row["id"])
                valid.append(row)
            else:
                row["reject_reason"] = reason
                rejects.append(row)
    return valid, rejects


def process(rows: list[Row]) -> None:
    for row in rows:
        row["total_value"] = row["value"] * row["quantity"]


def transform(rows: list[Row]) -> None:
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        sums[row["category"]] += row["total_value"]
        counts[row["category"]] += 1
    factors = {"A": 0.90, "B": 0.85, "C": 0.80}
    for row in rows:
        total, category = row["total_value"], row["category"]
        row["category_avg_total_value"] = sums[category] / counts[category]
        row["is_high_value"] = total > 5000.0
        row["tier"] = "premium" if total > 50_000.0 else "standard" if total > 5000.0 else "basic"
        row["discount_factor"] = factors.get(category, 0.95)
        row["discounted_value"] = total * row["discount_factor"]


def summarize(rows: list[Row]) -> Iterator[Row]:
    summary: dict[str, Row] = {}
    for row in rows:
        entry = summary.setdefault(
            row["category"], {"records": 0, "total_value": 0.0, "high": 0, "discounted_value": 0.0}
        )
        entry["records"] += 1
        entry["total_value"] += row["total_value"]
        entry["high"] += row["is_high_value"]
        entry["discounted_value"] += row["discounted_value"]
    for category, entry in sorted(summary.items()):
        yield {
            "category": category,
            "records": entry["records"],
            "total_value": entry["total_value"],
            "avg_total_value": entry["total_value"] / entry["records"],
            "high_value_records": entry["high"],
            "discounted_value": entry["discounted_value"],
        }


def _write(path: Path, rows: Iterator[Row] | list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(out: Path, records: int, *, seed: int) -> None:
    """The five stages from generated records to the three outputs under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    generate(out / "raw.jsonl", records, seed=seed)
    valid, rejects = ingest(out / "raw.jsonl")
    process(valid)
    transform(valid)
    _write(out / RESULTS, valid)
    _write(out / SUMMARY, summarize(valid))
    _write(out / REJECTS, rejects)


RESULT_SCHEMA: dict[str, pl.DataType] = {
    **stages.REQUIRED_COLUMNS,
    "total_value": pl.Float64(),
    "category_avg_total_value": pl.Float64(),
    "is_high_value": pl.Boolean(),
    "tier": pl.String(),
    "discount_factor": pl.Float64(),
    "discounted_value": pl.Float64(),
}
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "category": pl.String(),
    "records": pl.Int64(),
    "total_value": pl.Float64(),
    "avg_total_value": pl.Float64(),
    "high_value_records": pl.Int64(),
    "discounted_value": pl.Float64(),
}
REJECT_SCHEMA = {**stages.REQUIRED_COLUMNS, stages.REJECT_REASON: pl.String()}


def _read(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    text_schema = {
        name: pl.String() if name == "created_at" else dtype for name, dtype in schema.items()
    }
    frame = (
        pl.read_ndjson(path, schema=text_schema)
        if path.stat().st_size
        else pl.DataFrame(schema=text_schema)
    )
    if "created_at" not in schema:
        return frame
    return frame.with_columns(pl.col("created_at").str.to_datetime(time_unit="us"))


def read_outputs(out: Path) -> dict[str, pl.DataFrame]:
    """The three outputs as frames, keyed as the pipeline's Parquet files are named."""
    return {
        "output/results.parquet": _read(out / RESULTS, RESULT_SCHEMA),
        "output/summary.parquet": _read(out / SUMMARY, SUMMARY_SCHEMA),
        "rejects.parquet": _read(out / REJECTS, REJECT_SCHEMA),
    }
