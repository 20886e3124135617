"""Where a malformed CSV or JSON Lines file first goes wrong, for an error a person can act on:
the line and what is wrong with it, else Polars' own words."""

import csv
import json
from pathlib import Path
from typing import IO

# the csv module refuses a value over 128 KiB, which Polars reads: no reason of ours to refuse one
csv.field_size_limit(2**31 - 1)


def locate(path: Path, fmt: str, exc: Exception) -> str:
    """The first malformed line of a CSV or JSON Lines file, else Polars' own words."""
    return first_bad_line(path, fmt) or unreadable(fmt, exc)


def unreadable(fmt: str, exc: Exception) -> str:
    """Polars' own words, when no line is to blame."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"not a readable {fmt} file ({reason})"


def header_line(path: Path, fmt: str) -> int:
    """The number of a file's first line, its CSV header or first JSON Lines record: the empty
    lines before it are skipped by the reader (lines of spaces too, in JSON Lines). Reads only
    as far as that line's first character."""
    skipped = b" \t\r\n" if fmt == "jsonl" else b"\r\n"
    number = 1
    with path.open("rb") as handle:
        while chunk := handle.read(64 * 1024):
            content = chunk.lstrip(skipped)
            number += chunk[: len(chunk) - len(content)].count(b"\n")
            if content:
                break
    return number


def at_header(path: Path, fmt: str, problem: str) -> str:
    """`problem`, its "line 1: " made the header's own line when empty lines come first."""
    if problem.startswith("line 1: ") and (number := header_line(path, fmt)) != 1:
        return f"line {number}: {problem.removeprefix('line 1: ')}"
    return problem


def first_bad_line(path: Path, fmt: str) -> str | None:
    """'line N: …' for the first malformed line of a CSV or JSON Lines file ('lines N-M: …' for a
    CSV record over several); None if none is."""
    try:
        if fmt == "jsonl":
            with path.open("rb") as handle:
                return _first_bad_jsonl_line(handle)
        if fmt == "csv":
            return (
                _first_non_utf8_line(path) or first_bad_csv_line(path) or _first_stray_quote(path)
            )
    except OSError:
        pass
    return None


# JSON's whitespace: a JSON Lines line of only these is skipped, by Polars too; Python's
# bytes.strip() also takes a vertical tab and a form feed, on which Polars fails ("TapeError")
JSON_SPACE = b" \t\r\n"


def blank_but_not_space(number: int) -> str:
    return (
        f"line {number}: blank but for a vertical tab or form feed, which JSON does not take as "
        "space; remove the line"
    )


def _first_bad_jsonl_line(handle: IO[bytes]) -> str | None:
    for number, line in enumerate(handle, 1):
        if not line.strip(JSON_SPACE):
            continue
        if not line.strip():
            return blank_but_not_space(number)
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            return bad_jsonl_line(number, exc)
        if not isinstance(value, dict):
            return not_an_object(number)
    return None


def bad_jsonl_line(number: int, exc: ValueError | RecursionError) -> str:
    """What json.loads found wrong with line `number` of a JSON Lines file."""
    if isinstance(exc, UnicodeDecodeError):
        return f"line {number}: not UTF-8 text; save the file as UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return f"line {number}: not valid JSON ({exc.msg} at character {exc.pos + 1})"
    if isinstance(exc, RecursionError):
        return f"line {number}: not valid JSON (nested too deeply)"
    # the one ValueError left: Python reads no integer of more than 4300 digits
    return f"line {number}: an integer of more than 4300 digits; write it in quotes, as text"


def not_an_object(number: int) -> str:
    return f"line {number}: not a JSON object; JSON Lines has one object per line"


def _first_non_utf8_line(path: Path) -> str | None:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return f"line {number}: not UTF-8 text; save the file as UTF-8"
    return None


def first_bad_csv_line(path: Path) -> str | None:
    """The first CSV record with more or fewer fields than the header, or that the csv module
    cannot read; blank lines are no records. A record over several lines (a quoted value with a
    line break) is named by all of them, from the one it starts on: 'lines 12-14: …'."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as text:
        reader = csv.reader(text)
        try:
            header = next((row for row in reader if row), [])  # as Polars, past blank lines
            start = reader.line_num + 1
            for row in reader:
                where = record_lines(start, reader.line_num)
                if len(row) > len(header):
                    return (
                        f"{where}: {len(row)} fields where the header has "
                        f"{len(header)}; quote values that contain commas"
                    )
                if row and len(row) < len(header) and (len(row) > 1 or row[0].strip()):
                    fields = f"{len(row)} field{'s' if len(row) > 1 else ''}"
                    return (
                        f"{where}: {fields} where the header has {len(header)}; "
                        "write a missing value as nothing between two commas (,,)"
                    )
                start = reader.line_num + 1
        except csv.Error as exc:  # found on the line being read, wherever its record started
            return f"line {reader.line_num}: {exc}"
    return None


def record_lines(first: int, last: int) -> str:
    """'line 12' for a record on one line, 'lines 12-14' for one over several."""
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _first_stray_quote(path: Path) -> str | None:
    """A quote inside a value that does not start with one (12" pizza): Python's csv module reads
    it as part of the value, Polars refuses the file."""
    with path.open(encoding="utf-8-sig", newline="") as text:
        quoted, at_start, after_quote = False, True, False
        for number, line in enumerate(text, 1):
            for char in line:
                if quoted:
                    if char == '"':
                        quoted, after_quote = False, True
                    continue
                if char == '"' and after_quote:  # "" inside a quoted value: go on quoting
                    quoted, after_quote = True, False
                elif char == '"' and at_start:
                    quoted = True
                elif char == '"':
                    return (
                        f'line {number}: a " inside a value that is not quoted; quote the value '
                        'and double the quote inside it: "12"" pizza"'
                    )
                else:
                    after_quote = False
                at_start = char in ",\r\n"
    return None
