"""Text holding the NUL character rejects its row, whatever the input's format: PostgreSQL text
cannot store it, and tools reading the results (CSV above all) choke on it. Only name and the
file's own columns are looked at, the text inside a Parquet list or struct too: a NUL in another
required column already makes that value unparseable (category "A\\x00" is an unknown category).
A column name holding one refuses the file."""

import polars as pl
from polars.datatypes import DataType, DataTypeClass

from app.echoed import cut
from app.pipeline import stages

_NUL = "\x00"
# JSON Lines writes NUL \u0000, and Polars reads a lone \ud800 as one (jsonl_text makes any
# unpaired surrogate one)
_HOW = {"jsonl": "\\u0000, or an unpaired surrogate such as \\ud800"}


def mark(frame: pl.LazyFrame, fmt: str) -> pl.LazyFrame:
    """`frame`, an input file of format `fmt` read, with stages.INPUT_PROBLEM naming the first
    text column (name, or one of the file's own) holding a NUL; unchanged if it has none."""
    how = _HOW.get(fmt, "\\u0000")
    found: list[pl.Expr] = []
    for name, dtype in frame.collect_schema().items():
        if name in stages.REQUIRED_COLUMNS and name != "name":
            continue
        nul = _holds_nul(pl.col(name), dtype)
        if nul is not None:  # None: a number, a binary; JSON Lines reads a list as its JSON text
            found.append(pl.when(nul).then(pl.lit(f"NUL character in {name} ({how})")))
    if not found:  # no text column to look at
        return frame
    # side by side, not one when/then chain: Polars plans a chain of N links in N^2 time and
    # memory (3,000 columns took 35 s and 4 GB)
    return frame.with_columns(pl.coalesce(found).alias(stages.INPUT_PROBLEM))


def _holds_nul(value: pl.Expr, dtype: DataType | DataTypeClass) -> pl.Expr | None:
    """Whether `value`, of type `dtype`, holds a NUL in its text at any depth (a list of structs
    of strings), as a Polars expression that streams; None if it holds no text."""
    dtype = _instance(dtype)
    if isinstance(dtype, pl.Categorical | pl.Enum):  # a Parquet file's
        return value.cast(pl.String).str.contains(_NUL, literal=True)
    if isinstance(dtype, pl.String):
        return value.str.contains(_NUL, literal=True)
    if isinstance(dtype, pl.List | pl.Array):
        inner = _holds_nul(pl.element(), dtype.inner)
        items = value.arr.to_list() if isinstance(dtype, pl.Array) else value
        return None if inner is None else items.list.eval(inner).list.any()
    if isinstance(dtype, pl.Struct):
        fields = [_holds_nul(value.struct.field(f.name), f.dtype) for f in dtype.fields]
        found = [field for field in fields if field is not None]
        return pl.any_horizontal(found) if found else None
    return None


def name_problem(schema: pl.Schema, fmt: str) -> str | None:
    """What is wrong with an input whose column name, or a Parquet struct's field name, holds a
    NUL (no file written from the results could name it), naming the column; else None."""
    how = _HOW.get(fmt, "\\u0000")
    header = "line 1: " if fmt == "csv" else ""
    for position, (name, dtype) in enumerate(schema.items(), 1):
        if _NUL in name:
            return (
                f"{header}column {position}'s name {cut(name)!r} holds a NUL character ({how}); "
                "rename the column"
            )
        if (field := _nul_field(dtype)) is not None:
            return (
                f"column {position} ({cut(name)!r}) has a field named {cut(field)!r}, which "
                f"holds a NUL character ({how}); rename the field"
            )
    return None


def _nul_field(dtype: DataType | DataTypeClass) -> str | None:
    """The first struct field name holding a NUL inside `dtype`, at any depth; else None."""
    dtype = _instance(dtype)
    if isinstance(dtype, pl.List | pl.Array):
        return _nul_field(dtype.inner)
    if isinstance(dtype, pl.Struct):
        for field in dtype.fields:
            if _NUL in field.name:
                return field.name
            if (deeper := _nul_field(field.dtype)) is not None:
                return deeper
    return None


def _instance(dtype: DataType | DataTypeClass) -> DataType:
    """`dtype` as an instance: a schema made in code may hold a class (pl.List(pl.String).inner)."""
    return dtype() if isinstance(dtype, DataTypeClass) else dtype
