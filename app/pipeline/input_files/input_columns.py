"""What is wrong with an input file's columns, whatever its format: too many, a required one
missing, repeated or of a type that cannot hold its values, a name the pipeline uses itself or
one holding NUL. Each is a whole-file problem: the file is refused, naming the fix."""

import re

import polars as pl

from app.config import get_settings
from app.echoed import cut
from app.pipeline import stages
from app.pipeline.input_files import nul

# longer, a column's name is no name: a first line that is no header, or a run of NUL bytes
LONGEST_NAME = 1000
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
    if long := next(
        ((n, name) for n, name in enumerate(names, 1) if len(name) > LONGEST_NAME), None
    ):
        position, name = long
        said = (
            f"column {position}'s name is {len(name):,} characters long ({_named(name)}), more "
            f"than the {LONGEST_NAME:,} a name may have"
        )
        if fmt == "csv":
            return f"line 1: {said}; a CSV's first line names its columns: is it the header?"
        return f"{said}; rename it"
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
            f"column {_named(own[0])}: names starting with '__', and {stages.REJECT_REASON}, "
            "are the pipeline's own; rename it"
        )
    missing = stages.missing_columns(schema)
    if not missing:
        return _type_problem(schema)
    absent = f"missing required columns: {', '.join(missing)}"
    by_lowercase = {name.strip().lower(): name for name in names}
    near = [f"{_named(by_lowercase[m])} for {m!r}" for m in missing if m in by_lowercase]
    if near:
        return f"{absent}; the file has {', '.join(near)} (names are exact: lowercase, no spaces)"
    shown = ", ".join(map(_named, names[:10])) + (", …" if len(names) > 10 else "")
    return f"{absent}; the file's columns are {shown}"


def _shown(name: str) -> str:
    return cut(name) if name else "an unnamed column"


def _named(name: str) -> str:
    """A column's name as a message quotes it: cut short, as every refusal cuts a client's text
    (a 30 MB run of NUL bytes on line 1 made a 300 MB 422)."""
    return repr(cut(name))


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
