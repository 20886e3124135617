"""Text holding the NUL character rejects its row, whatever the input's format: PostgreSQL text
cannot store it, and tools reading the results (CSV above all) choke on it. Only name and the
file's own columns are looked at: a NUL in another required column already makes that value
unparseable (category "A\\x00" is an unknown category)."""

from typing import Any

import polars as pl

from app.pipeline import stages

_NUL = "\x00"
# JSON Lines writes NUL \u0000, and Polars reads a lone \ud800 as one (jsonl_text makes any
# unpaired surrogate one)
_HOW = {"jsonl": "\\u0000, or an unpaired surrogate such as \\ud800"}


def mark(frame: pl.LazyFrame, fmt: str) -> pl.LazyFrame:
    """`frame`, an input file of format `fmt` read, with stages.INPUT_PROBLEM naming the first
    text column (name, or one of the file's own) holding a NUL; unchanged if it has none."""
    how = _HOW.get(fmt, "\\u0000")
    problem: Any = pl
    for name, dtype in frame.collect_schema().items():
        if name in stages.REQUIRED_COLUMNS and name != "name":
            continue
        if isinstance(dtype, pl.Categorical | pl.Enum):  # a Parquet file's
            text = pl.col(name).cast(pl.String)
        elif isinstance(dtype, pl.String):
            text = pl.col(name)
        else:  # a number, or a list or struct: JSON Lines reads those as their JSON, \u0000 as is
            continue
        nul = text.str.contains(_NUL, literal=True)
        problem = problem.when(nul).then(pl.lit(f"NUL character in {name} ({how})"))
    if problem is pl:  # no text column to look at
        return frame
    return frame.with_columns(problem.otherwise(None).alias(stages.INPUT_PROBLEM))
