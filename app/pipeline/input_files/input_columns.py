"""What is wrong with an input file's columns, whatever its format: too many, a required one
missing, repeated or of a type that cannot hold its values, a name the pipeline uses itself or
one holding NUL. Each is a whole-file problem: the file is refused, naming the fix."""

import re

import polars as pl

from app.config import get_settings
from app.pipeline import stages
from app.pipeline.input_files import nul

_DUPLICATED = re.compile(r"^(?P<name>.*)_duplicated_\d+$")  # how Polars renames a repeated header


def problem(schema: pl.Schema, fmt: str) -> str | None:
    """What is wrong with the columns of an input of format `fmt` (more than
    PIPELINE_MAX_INPUT_COLUMNS; a required one missing, repeated or of a type that cannot hold its
    values; a name the pipeline uses itself, or one holding NUL), or None."""
    names = schema.names()
    limit = get_settings().max_input_columns
    if len(names) > limit:
        return (
            f"the file has {len(names):,} columns, more than the {limit:,} a run reads "
            "(PIPELINE_MAX_INPUT_COLUMNS); keep the 7 required columns and only the extra ones "
            "the results need"
        )
    repeated = sorted(
        {m["name"] for m in map(_DUPLICATED.match, names) if m and m["name"] in schema}
    )
    if repeated == [""]:
        return (
            "line 1: the header has more than one unnamed column (nothing between two "
            "delimiters, or a delimiter at the end); name each column or remove the extra delimiters"
        )
    if repeated:
        return f"line 1: the header names {', '.join(map(_shown, repeated))} more than once"
    if nul_name := nul.name_problem(schema, fmt):
        return nul_name
    if own := [name for name in names if name.startswith("__") or name == stages.REJECT_REASON]:
        return (
            f"column {own[0]!r}: names starting with '__', and {stages.REJECT_REASON}, are the "
            "pipeline's own; rename it"
        )
    missing = stages.missing_columns(schema)
    if not missing:
        return _type_problem(schema)
    absent = f"missing required columns: {', '.join(missing)}"
    by_lowercase = {name.strip().lower(): name for name in names}
    near = [f"{by_lowercase[m]!r} for {m!r}" for m in missing if m in by_lowercase]
    if near:
        return f"{absent}; the file has {', '.join(near)} (names are exact: lowercase, no spaces)"
    shown = ", ".join(repr(name) for name in names[:10]) + (", …" if len(names) > 10 else "")
    return f"{absent}; the file's columns are {shown}"


def _shown(name: str) -> str:
    return name if name else "an unnamed column"


def _type_problem(schema: pl.Schema) -> str | None:
    """A required column of a type (a Parquet file's) its values cannot be read from, or None."""
    for name, target in stages.REQUIRED_COLUMNS.items():
        source = schema[name]
        if isinstance(source, pl.String | pl.Null):
            continue
        if isinstance(target, pl.Datetime):
            fits, wanted = isinstance(source, pl.Datetime | pl.Date), "timestamps or dates"
        elif isinstance(target, pl.Boolean):
            fits, wanted = isinstance(source, pl.Boolean) or source.is_integer(), "booleans"
        elif isinstance(target, pl.String):
            fits = source.is_numeric() or isinstance(source, pl.Boolean | pl.Categorical | pl.Enum)
            wanted = "text"
        else:
            fits, wanted = source.is_numeric(), "numbers"
        if not fits:
            return f"column {name!r} is of type {source}; it must hold {wanted} (or text of them)"
    return None
