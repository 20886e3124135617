"""A run's rejects file as ingest writes it (Parquet, whole or not at all), with `rows` rows."""

from pathlib import Path

import polars as pl


def write_rejects(path: Path, rows: int) -> None:
    """`rows` rejected rows; none leaves the header alone, as ingest writes it when it rejects
    nothing (or was stopped before it could count what it rejected)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "id": [str(i) for i in range(1, rows + 1)],
            "reject_reason": ["unknown category (must be A, B, C or D)"] * rows,
        },
        schema={"id": pl.String, "reject_reason": pl.String},
    ).write_parquet(path)
