"""Users' input files (CSV, JSON Lines, Parquet): their format, whole-file checks, conversion.

Whole-file problems (empty, not the declared format, wrong delimiter, missing required columns,
unreadable compression) raise InputError naming what is wrong and where; row-level problems are
left to stages.validate, which sends those rows to the rejects file. CSV and JSON Lines are read
as text columns, so an unparseable number rejects its row instead of failing the file.
"""

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl

from app.pipeline.input_files import (
    content_format,
    csv_lines,
    input_columns,
    input_gone,
    jsonl_text,
    nul,
)
from app.pipeline.input_files.compression import COMPRESSIONS, InputError, head, plain
from app.pipeline.input_files.input_dir import resolve_under
from app.pipeline.input_files.locate import at_header, first_bad_line, locate, unreadable
from app.pipeline.store import count_rows, row_group_rows

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_UTF16_32_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_DELIMITERS = (";", "\t", "|")
_T = TypeVar("_T")


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
    if field == "input_path":  # the JSON body has no format field: the name is all there is
        fix = "rename the file to end in .csv, .jsonl or .parquet (optionally .gz, .bz2 or .xz)"
        raise InputError(field, f"cannot tell the format of {filename!r}: {fix}")
    raise InputError(
        field,
        f"cannot tell the format of {filename!r}: name it .csv, .jsonl or .parquet "
        "(optionally .gz, .bz2 or .xz compressed), or send format=csv|jsonl|parquet",
    )


def scan_input(path: Path, fmt: str, scratch: Path, *, field: str = "file") -> pl.LazyFrame:
    """A plain (uncompressed) input file as a lazy frame; CSV and JSON Lines as text columns
    (but a JSON Lines file's required number and boolean columns that hold only such: read_types).

    `scratch` is for a copy the reading needs, the caller's to remove once the frame is read.
    """
    if fmt == "parquet":
        return pl.scan_parquet(path)
    if fmt == "csv":  # a blank line is a row of nulls here; see csv_lines
        return csv_lines.read(path)
    try:  # every line's keys: one that first shows late is a column too
        inferred = pl.scan_ndjson(path, infer_schema_length=None).collect_schema()
        schema = None if jsonl_text.rounded_ids(path, inferred) else inferred
    except pl.exceptions.NoDataError:
        raise
    except pl.exceptions.PolarsError:  # a value it cannot read, or types no one column holds
        schema = None
    if schema is not None:
        return pl.scan_ndjson(path, schema=jsonl_text.read_types(schema.names(), schema))
    # read as written: Polars' reader would not give every value as it is
    names = jsonl_text.rewrite(path, scratch / "text.jsonl", field=field)
    return pl.scan_ndjson(scratch / "text.jsonl", schema=jsonl_text.read_types(names, None))


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
    content_format.check(path, fmt, field)
    if fmt == "csv" and not _header_is_utf8(path):  # Polars reads it as '�': a name no one wrote
        raise InputError(field, "line 1: not UTF-8 text; save the file as UTF-8")
    try:
        frame = scan_input(path, fmt, scratch, field=field)
        schema = frame.collect_schema()
    except pl.exceptions.NoDataError:
        raise InputError(field, "the file is empty") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(field, _unreadable(path, fmt, exc)) from None
    if fmt == "csv" and len(schema) == 1:
        header = schema.names()[0]
        for delimiter in _DELIMITERS:
            if delimiter in header:
                separated = (
                    f"line 1: columns are separated by {delimiter!r}, not ','; "
                    "save the CSV comma-separated"
                )
                raise InputError(field, at_header(path, fmt, separated))
    problem = input_columns.problem(schema, fmt)
    if problem:
        raise InputError(field, _lone_cr_first(path, fmt, schema, problem))
    short = None
    try:  # every column is decoded once, streaming, so malformed lines show up now
        if fmt == "csv":
            rows, short = csv_lines.count(path, frame)
        else:
            rows = _exactly(_count, frame, path, fmt)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(field, _unreadable(path, fmt, exc)) from None
    if short:
        raise InputError(field, short)
    if rows == 0:
        raise InputError(field, "the file has no records, only a header")
    return rows


def _header_is_utf8(path: Path, most: int = 1 << 20) -> bool:
    """Whether a CSV's first line (its first MiB at most) is UTF-8. Polars decodes the header
    lossily: a byte of Latin-1 there made a column 'caf\ufffd' and a 201, and the run failed."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        line = handle.readline(most)
    try:
        decoder.decode(
            line, final=line.endswith(b"\n")
        )  # a line cut at `most` may end mid-character
    except UnicodeDecodeError:
        return False
    return True


def _count(frame: pl.LazyFrame) -> int:
    """The frame's rows, every column decoded."""
    nulls = (pl.col(name).null_count() for name in frame.collect_schema().names())
    counts = frame.select(pl.len().alias("__rows"), *nulls)  # no column of the file's
    return int(counts.collect(engine="streaming").item(0, 0))


def _exactly(read: Callable[[pl.LazyFrame], _T], frame: pl.LazyFrame, path: Path, fmt: str) -> _T:
    """read(frame) of the input file at `path`; a JSON Lines file with a number column that also
    holds true or false, which Polars reads as a number and then fails at the true, read again with
    such columns as text (as validate casts them: is_active 1 and true are both true)."""
    try:
        return read(frame)
    except pl.exceptions.ComputeError:
        types = (
            jsonl_text.booleans_as_text(path, frame.collect_schema()) if fmt == "jsonl" else None
        )
        if types is None:
            raise
    return read(pl.scan_ndjson(path, schema=types))


def _sink(frame: pl.LazyFrame, fmt: str, dest: Path) -> None:
    """Write the input's frame to `dest` as one uncompressed Parquet file, its NULs marked."""
    frame = nul.mark(frame, fmt)
    frame.sink_parquet(
        dest,
        compression="uncompressed",
        statistics=False,
        row_group_size=row_group_rows(frame.collect_schema()),
    )


def _unreadable(path: Path, fmt: str, exc: Exception) -> str:
    """Where a file Polars could not read goes wrong. In a CSV, a quote left open comes first (the
    csv module blames the file's last line for it); lines ending in a lone CR come last, when no
    line is to blame otherwise (the csv module reads a lone CR as a line break; a stray quote
    before it would have this module see a quoted value where there is none)."""
    if fmt != "csv":
        return locate(path, fmt, exc)
    return (
        csv_lines.runaway_quote(path)
        or first_bad_line(path, fmt)
        or csv_lines.lone_cr(path)
        or unreadable(fmt, exc)
    )


def _lone_cr_first(path: Path, fmt: str, schema: pl.Schema, problem: str) -> str:
    """A CSV whose lines end in a lone CR is one line to Polars, its header running into the
    records ('created_at\\r1'): that, not the columns it seems to have."""
    if fmt == "csv" and any("\r" in name for name in schema) and (found := csv_lines.lone_cr(path)):
        return found
    return at_header(path, fmt, problem)


def convert(path: Path, fmt: str, dest: Path, *, field: str = "input_path") -> int:
    """Stream an input file (decompressing it first if needed) into one Parquet file; its rows.

    The file was checked when its pipeline was made, but it may have gone since (an upload
    removed from the server) or, under PIPELINE_INPUT_DIR, been replaced: one without the
    required columns, with a record too short or without records is refused here.
    """
    try:
        return _convert(path, fmt, dest, field)
    except FileNotFoundError:
        if refused := input_gone.gone(path, field=field):
            raise refused from None
        raise


def _convert(path: Path, fmt: str, dest: Path, field: str) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with plain(path, dest.parent, fmt, field=field) as source:
        if source.path.stat().st_size:  # an empty file is said to be empty, below
            content_format.check(source.path, fmt, field)
        try:
            frame = scan_input(source.path, fmt, source.scratch, field=field)
            schema = frame.collect_schema()
            problem = input_columns.problem(schema, fmt)
            if problem:
                raise InputError(field, _lone_cr_first(source.path, fmt, schema, problem))
            if fmt == "csv":
                frame = csv_lines.without_blank_lines(source.path, frame)
            _exactly(lambda read: _sink(read, fmt, dest), frame, source.path, fmt)
        except pl.exceptions.NoDataError:
            raise InputError(field, "the file is empty") from None
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(field, _unreadable(source.path, fmt, exc)) from None
        last = pl.col(schema.names()[-1]).null_count()  # where a short record's padding would be
        padded = fmt == "csv" and pl.scan_parquet(dest).select(last).collect().item() > 0
        if padded and (short := csv_lines.short_record(source.path, len(schema))):
            raise InputError(field, short)
    rows = count_rows(dest)
    if rows == 0:
        raise InputError(field, "the file has no records, only a header")
    return rows


def check_under(relative: str, base: Path | None, scratch: Path) -> CheckedInput:
    """The checked input file `relative` names under PIPELINE_INPUT_DIR (`base`): its format is
    the one its name tells, a symlink's own name (the name the user gave), not its target's."""
    path = resolve_under(relative, base)
    fmt = format_of(path.name, field="input_path")
    return CheckedInput(path, fmt, check(path, fmt, scratch, field="input_path"))
