"""What Polars' CSV reader does not tell, read from the file's lines: a record with too few fields
(it pads one with nulls), a blank line (it reads one as a row of nulls, as it reads a line of
only commas, which is a record), lines ending in a lone CR, and the line a runaway quote opens on.
"""

import csv
import re
from pathlib import Path

import polars as pl

from app.pipeline.input_files.locate import first_bad_csv_line

_LINE, _ROW = "line", "row"
_BLANK_ROW = "__row"
_QUOTES, _COMMAS, _OUTSIDE, _STARTS, _SURPLUS = "quotes", "commas", "outside", "starts", "surplus"
# a quoted value ("a,b", "12"" pizza"), or one going on past the line: no commas of it separate
_QUOTED = r'"[^"]*(?:"|$)'
_QUOTE_OR_LONE_CR = re.compile(rb'"|\r(?!\n)')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # as the csv module ends its lines


def read(path: Path) -> pl.LazyFrame:
    """The CSV's records as text columns, as Polars reads them: a blank line is a row of nulls."""
    return pl.scan_csv(path, infer_schema=False, raise_if_empty=True)


def without_blank_lines(path: Path, frame: pl.LazyFrame) -> pl.LazyFrame:
    """`frame`, read from `path`, without the rows of its blank lines."""
    blank = _blank_rows(path)
    if not blank.len() or _BLANK_ROW in frame.collect_schema():  # "__…" is refused anyway
        return frame
    empty = pl.all_horizontal(pl.exclude(_BLANK_ROW).is_null())
    blank_line = pl.col(_BLANK_ROW).is_in(blank.implode()) & empty
    return frame.with_row_index(_BLANK_ROW).filter(~blank_line).drop(_BLANK_ROW)


def count(path: Path, frame: pl.LazyFrame) -> tuple[int, str | None]:
    """The records of `frame`, read from `path` (blank lines are none), and the first record with
    too few fields, else None: one streaming pass over the rows, and over the lines only if a row
    is all nulls (blank?) or one not blank has a null last field (padded?)."""
    # named "__…", as no column of the file is
    empty = pl.all_horizontal(pl.all().is_null()).sum().alias("__empty")
    last = pl.nth(-1).null_count().alias("__last")
    counts = frame.select(pl.len().alias("__rows"), empty, last).collect(engine="streaming")
    rows, empty_rows, last_nulls = counts.row(0)
    blank = _blank_rows(path).len() if empty_rows else 0
    fields = len(frame.collect_schema())
    return rows - blank, short_record(path, fields) if last_nulls > blank else None


def short_record(path: Path, fields: int) -> str | None:
    """'line N: …' ('lines N-M: …' over several) for the first record with fewer than `fields`
    fields (or another malformed one before it), else None. Worth asking only when Polars read a
    null into the last column.

    One streaming pass counts the separators of each record, one over several lines (a quoted
    value with a newline) too; the csv module reads the file only if one is short, to name it.
    """
    if _records_off(path, fields):
        return runaway_quote(path) or first_bad_csv_line(path) or lone_cr(path)
    return None


def lone_cr(path: Path) -> str | None:
    """'line N: …' for the first line ending in a lone CR outside a quoted value (old Mac files):
    Polars reads no line break there, and names no line. One pass over the bytes, looking only
    at quotes and CRs not before LF; asked only of a file that could not be read."""
    quoted, lines = False, 0  # line breaks before the chunk
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            while chunk.endswith(b"\r") and (more := handle.read(1)):  # a CRLF cut in two
                chunk += more
            inside = 0  # lone CRs inside quoted values, so far in the chunk: line breaks too
            for found in _QUOTE_OR_LONE_CR.finditer(chunk):
                if found[0] == b'"':
                    quoted = not quoted
                elif quoted:
                    inside += 1
                else:
                    number = lines + chunk.count(b"\n", 0, found.start()) + inside + 1
                    return (
                        f"line {number}: ends in a lone CR (old Mac line endings), which is no "
                        "line break here; save the file with LF or CRLF line endings"
                    )
            lines += chunk.count(b"\n") + inside
    return None


def runaway_quote(path: Path) -> str | None:
    """'line N: …' for a quote never closed (the file has an odd number of quotes), when the value
    it opens swallowed the rest of the file and left its record with other than the header's
    number of fields: the csv module names the file's last line, this the line the value opens on.
    None for any other first malformed record: a quoted value closed lines later may be text."""
    with path.open("rb") as raw:
        if sum(chunk.count(b'"') for chunk in iter(lambda: raw.read(1 << 20), b"")) % 2 == 0:
            return None
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as text:
        reader = csv.reader(text)
        try:
            header = next((row for row in reader if row), [])
            start = reader.line_num + 1
            for row in reader:
                off = len(row) > len(header) or (
                    len(row) < len(header) and (len(row) > 1 or bool(row and row[0].strip()))
                )
                if off:
                    last = next(reader, None) is None and _LINE_BREAK.search(row[-1])
                    return _runaway(row, start, len(header)) if last else None
                start = reader.line_num + 1
        except csv.Error:
            return None
    return None


def _runaway(row: list[str], start: int, fields: int) -> str:
    """The message for a record starting on line `start` whose last value runs to the file's end."""
    opens = start + sum(len(_LINE_BREAK.findall(value)) for value in row[:-1])
    return (
        f"line {opens}: a quoted value opens here and is never closed (it runs on to the end of "
        f"the file), so its record has {len(row)} field{'s' if len(row) > 1 else ''} where the "
        f'header has {fields}; close the quote, or double a quote inside a quoted value ("")'
    )


def _records_off(path: Path, fields: int) -> bool:
    """Whether a record, from the header on, has other than `fields` - 1 separators: the commas
    outside quotes of its lines. A line that starts inside a quoted value (after an odd number of
    quotes) has those the other way round: its commas less the ones it has starting outside."""
    line, quotes, commas = pl.col(_LINE), pl.col(_QUOTES), pl.col(_COMMAS)
    counted = (
        pl.scan_lines(path, name=_LINE)
        .with_columns(line.str.count_matches('"', literal=True).alias(_QUOTES))
        .select(
            quotes,
            line.str.count_matches(",", literal=True).alias(_COMMAS),
            # null on a line without quotes (most): its commas, counted once
            pl.when(quotes > 0)
            .then(line)
            .str.replace_all(_QUOTED, "")
            .str.count_matches(",", literal=True)
            .alias(_OUTSIDE),
            # a line of only spaces starts no record here: Polars reads one as a record, padded
            # (id "  ", rejected), and a blank line as none
            (line.str.strip_chars() != "").alias(_STARTS),
        )
    )
    inside = (quotes.cum_sum() - quotes) % 2 == 1
    outside = pl.coalesce(_OUTSIDE, commas).cast(pl.Int64)
    starts = ~inside & pl.col(_STARTS)
    # a line's separators, less fields - 1 where a record starts: summed over the lines before a
    # record, 0 while each record before it had fields - 1
    surplus = pl.when(inside).then(commas.cast(pl.Int64) - outside).otherwise(outside)
    surplus = surplus - (fields - 1) * starts.cast(pl.Int64)
    each = counted.select(surplus.alias(_SURPLUS), starts.alias(_STARTS))
    before = pl.col(_SURPLUS).cum_sum() - pl.col(_SURPLUS)
    off = each.select((pl.col(_STARTS) & (before != 0)).any() | (pl.col(_SURPLUS).sum() != 0))
    return bool(off.collect(engine="streaming").item())


def _blank_rows(path: Path) -> pl.Series:
    """The rows Polars reads from blank lines, numbered as it numbers the records: from the line
    after the header, the first line that is not blank."""
    line = pl.col(_LINE)
    lines = pl.scan_lines(path, name=_LINE)
    blank = _blank_lines(lines)
    if blank.len():
        odd = (line.str.count_matches('"', literal=True) % 2).cast(pl.UInt32)
        if lines.select((odd == 1).any()).collect(engine="streaming").item():
            # a quoted value over several lines: a blank line inside it is part of the value
            blank = _blank_lines(lines.filter((odd.cum_sum() - odd) % 2 == 0))
    before_header = int((blank == pl.arange(0, blank.len(), eager=True)).sum())
    return blank[before_header:] - (before_header + 1)


def _blank_lines(lines: pl.LazyFrame) -> pl.Series:
    numbered = lines.with_row_index(_ROW)
    found = numbered.select(pl.col(_ROW).filter(pl.col(_LINE) == "").implode())
    return found.collect(engine="streaming").item()
