"""Users' input files (CSV, JSON Lines, Parquet): their format, whole-file checks, conversion.

Whole-file problems (empty, not the declared format, wrong delimiter, missing required columns,
unreadable compression) raise InputError naming what is wrong and where; row-level problems are
left to stages.validate, which sends those rows to the rejects file. CSV and JSON Lines are read
as text columns, so an unparseable number rejects its row instead of failing the file.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from app.pipeline import csv_lines, jsonl_text, nul, stages
from app.pipeline.compression import COMPRESSIONS, InputError, head, plain
from app.pipeline.locate import locate
from app.pipeline.store import ROW_GROUP_ROWS, count_rows, uploads_dir

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_PARQUET_MAGIC = b"PAR1"
_UTF16_32_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_DUPLICATED = re.compile(r"^(?P<name>.*)_duplicated_\d+$")  # how Polars renames a repeated header
_DELIMITERS = (";", "\t", "|")


@dataclass(frozen=True)
class CheckedInput:
    """An input file that passed the whole-file checks: where, its format, its rows."""

    path: Path
    format: str
    rows: int


def format_of(filename: str, declared: str | None = None, *, field: str = "file") -> str:
    """The input's format: the declared one, else the file name's suffix (after .gz/.bz2/.xz)."""
    if declared is not None:
        if declared not in FORMATS:
            raise InputError("format", f"must be one of {', '.join(FORMATS)}; got {declared!r}")
        return declared
    suffixes = [s.lower() for s in Path(filename).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    raise InputError(
        field,
        f"cannot tell the format of {filename!r}: name it .csv, .jsonl or .parquet "
        "(optionally .gz, .bz2 or .xz compressed), or send format=csv|jsonl|parquet",
    )


def scan_input(path: Path, fmt: str, scratch: Path, *, field: str = "file") -> pl.LazyFrame:
    """A plain (uncompressed) input file as a lazy frame; CSV and JSON Lines as text columns.

    `scratch` is for a copy the reading needs, the caller's to remove once the frame is read.
    """
    if fmt == "parquet":
        return pl.scan_parquet(path)
    if fmt == "csv":  # a blank line is a row of nulls here; see csv_lines
        return csv_lines.read(path)
    try:  # every line's keys: one that first shows late is a column too
        schema = pl.scan_ndjson(path, infer_schema_length=None).collect_schema()
        names = None if jsonl_text.rounded_ids(path, schema) else schema.names()
    except pl.exceptions.NoDataError:
        raise
    except pl.exceptions.PolarsError:  # a value it cannot read, or types no one column holds
        names = None
    if names is None:  # read as written: Polars' reader would not give every value as it is
        names = jsonl_text.rewrite(path, scratch / "text.jsonl", field=field)
        path = scratch / "text.jsonl"
    return pl.scan_ndjson(path, schema=dict.fromkeys(names, pl.String))


def check(path: Path, fmt: str, scratch: Path, *, field: str = "file") -> int:
    """Raise InputError for a whole-file problem of an input file; else its row count."""
    with plain(path, scratch, fmt, field=field) as source:
        return _check_plain(source.path, fmt, field, source.scratch)


def _check_plain(path: Path, fmt: str, field: str, scratch: Path) -> int:
    if path.stat().st_size == 0:
        raise InputError(field, "the file is empty")
    start = head(path, 64)
    for bom, encoding in _UTF16_32_BOMS:
        if fmt != "parquet" and start.startswith(bom):
            raise InputError(field, f"the file is {encoding} text; save it as UTF-8")
    start = start.lstrip()
    if fmt != "parquet" and start.startswith(_PARQUET_MAGIC):
        raise InputError(field, f"the content is Parquet, not {fmt}; send it as format=parquet")
    if fmt == "parquet" and not start.startswith(_PARQUET_MAGIC):
        raise InputError(field, "not a Parquet file (it does not start with PAR1)")
    if fmt == "jsonl" and not start.startswith(b"{"):
        what = "a JSON array" if start.startswith(b"[") else "not JSON Lines"
        raise InputError(
            field, f'line 1: {what}; JSON Lines has one JSON object per line, like {{"id": 1}}'
        )
    try:
        frame = scan_input(path, fmt, scratch, field=field)
        schema = frame.collect_schema()
    except pl.exceptions.NoDataError:
        raise InputError(field, "the file is empty") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(field, locate(path, fmt, exc)) from None
    if fmt == "csv" and len(schema) == 1:
        header = schema.names()[0]
        for delimiter in _DELIMITERS:
            if delimiter in header:
                raise InputError(
                    field,
                    f"line 1: columns are separated by {delimiter!r}, not ','; "
                    "save the CSV comma-separated",
                )
    problem = column_problem(schema, fmt)
    if problem:
        raise InputError(field, problem)
    short = None
    try:  # every column is decoded once, streaming, so malformed lines show up now
        if fmt == "csv":
            rows, short = csv_lines.count(path, frame)
        else:
            nulls = (pl.col(name).null_count() for name in schema.names())
            counts = frame.select(pl.len().alias("__rows"), *nulls)  # no column of the file's
            rows = counts.collect(engine="streaming").item(0, 0)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(field, locate(path, fmt, exc)) from None
    if short:
        raise InputError(field, short)
    if rows == 0:
        raise InputError(field, "the file has no records, only a header")
    return rows


def column_problem(schema: pl.Schema, fmt: str) -> str | None:
    """What is wrong with the columns of an input of format `fmt` (a required one missing,
    repeated or of a type that cannot hold its values; a name the pipeline uses itself, or one
    holding NUL), or None."""
    names = schema.names()
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
    problem = f"missing required columns: {', '.join(missing)}"
    by_lowercase = {name.strip().lower(): name for name in names}
    near = [f"{by_lowercase[m]!r} for {m!r}" for m in missing if m in by_lowercase]
    if near:
        return f"{problem}; the file has {', '.join(near)} (names are exact: lowercase, no spaces)"
    shown = ", ".join(repr(name) for name in names[:10]) + (", …" if len(names) > 10 else "")
    return f"{problem}; the file's columns are {shown}"


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


def convert(path: Path, fmt: str, dest: Path, *, field: str = "input_path") -> int:
    """Stream an input file (decompressing it first if needed) into one Parquet file; its rows.

    The file was checked when its pipeline was made, but a file under PIPELINE_INPUT_DIR may have
    been replaced since: one without the required columns, with a record too short or without
    records is refused here.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with plain(path, dest.parent, fmt, field=field) as source:
        try:
            frame = scan_input(source.path, fmt, source.scratch, field=field)
            schema = frame.collect_schema()
            problem = column_problem(schema, fmt)
            if problem:
                raise InputError(field, problem)
            if fmt == "csv":
                frame = csv_lines.without_blank_lines(source.path, frame)
            frame = nul.mark(frame, fmt)
            frame.sink_parquet(
                dest, compression="uncompressed", statistics=False, row_group_size=ROW_GROUP_ROWS
            )
        except pl.exceptions.NoDataError:
            raise InputError(field, "the file is empty") from None
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(field, locate(source.path, fmt, exc)) from None
        last = pl.col(schema.names()[-1]).null_count()  # where a short record's padding would be
        padded = fmt == "csv" and pl.scan_parquet(dest).select(last).collect().item() > 0
        if padded and (short := csv_lines.short_record(source.path, len(schema))):
            raise InputError(field, short)
    rows = count_rows(dest)
    if rows == 0:
        raise InputError(field, "the file has no records, only a header")
    return rows


def resolve_under(relative: str, base: Path | None, *, field: str = "input_path") -> Path:
    """The file `relative` names under `base`, fully resolved; never anything outside `base`
    (absolute paths, '..' and symlinks leading out are refused)."""
    if base is None:
        raise InputError(
            field,
            "reading files from the server is off: set PIPELINE_INPUT_DIR, or upload the file",
        )
    if "\x00" in relative or Path(relative).is_absolute():
        raise InputError(field, f"must be relative to PIPELINE_INPUT_DIR; got {relative!r}")
    try:
        root = base.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise InputError(field, f"{relative!r} is outside PIPELINE_INPUT_DIR")
        if target.is_relative_to(uploads_dir().resolve()):  # another pipeline's, deleted with it
            raise InputError(field, f"{relative!r} is an uploaded file; upload it again instead")
        if not target.is_file():
            raise InputError(field, f"no file {relative!r} in PIPELINE_INPUT_DIR")
        with target.open("rb"):  # readable by this process, not only there
            pass
    except (OSError, RuntimeError) as exc:  # a name too long, no permission, a symlink loop
        reason = f"cannot read {relative!r} in PIPELINE_INPUT_DIR ({_why(exc)}); "
        raise InputError(
            field, reason + "check the name and that the service's user may read the file"
        ) from None
    return target


def check_under(relative: str, base: Path | None, scratch: Path) -> CheckedInput:
    """The checked input file `relative` names under PIPELINE_INPUT_DIR (`base`)."""
    path = resolve_under(relative, base)
    fmt = format_of(path.name, field="input_path")
    return CheckedInput(path, fmt, check(path, fmt, scratch, field="input_path"))


def _why(exc: OSError | RuntimeError) -> str:
    if isinstance(exc, RuntimeError):  # Python 3.11's Path.resolve: "Symlink loop from …"
        return "a symlink loop"
    return exc.strerror or str(exc)


def within(path: Path, roots: list[Path]) -> bool:
    """Whether `path`, resolved, lies under one of `roots` (resolved); False for a symlink loop."""
    try:
        resolved = path.resolve()
    except RuntimeError:
        return False
    return any(resolved.is_relative_to(root.resolve()) for root in roots)
