"""JSON Lines values Polars' reader does not take as it takes the others: one it cannot read
(1e400, most unpaired surrogates) or a column with a list on one line and a number on another
([12.5] and 12.5) fails the whole file, an id written 9007199254740993.0 comes out as another
(rounded_ids), and a lone \\ud800 is read as NUL (the row is rejected: nul.py). Such a
file is rewritten with every value as text, as written, so that validate rejects a row with an
unparseable value, not the file, and reads an id exactly or not at all.

The rewrite reads each line with Python's json module, the slow way (about 5 s per million lines,
Polars takes 1), taken only for such a file; it streams, one line at a time.
"""

import json
import re
from pathlib import Path
from typing import Any

import polars as pl

from app.pipeline.input_files.compression import InputError
from app.pipeline.input_files.locate import (
    JSON_SPACE,
    bad_jsonl_line,
    blank_but_not_space,
    not_an_object,
)

_SURROGATE = re.compile("[\ud800-\udfff]")  # left in a str only by an unpaired \ud800 escape


def _first_of_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's keys, each with its first value, as Polars reads a key given twice: Python's
    json kept the last, so a line's value changed with the file's other lines (one 1e400)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


# 1e400 stays 1e400, an integer its digits (Python reads none of over 4300 digits as int)
_WRITTEN = json.JSONDecoder(
    parse_float=str, parse_int=str, parse_constant=str, object_pairs_hook=_first_of_each
)
# for a list's or an object's JSON text: [12.5], not ["12.5"]
_NESTED = json.JSONDecoder(object_pairs_hook=_first_of_each)
_ENCODER = json.JSONEncoder(ensure_ascii=False)
# the required columns read with their JSON type when every value has one of these (read_types):
# what validate casts exactly, as it casts text (a Float64 id or quantity would not be: 2**53 + 1)
_EXACT: dict[str, tuple[type[pl.DataType], ...]] = {
    "id": (pl.Int64,),
    "value": (pl.Int64, pl.Float64),
    "quantity": (pl.Int64,),
    "is_active": (pl.Boolean, pl.Int64),
}
_EXACT_FLOAT = 2**53  # a Float64 at or past it may be another whole number than the one written
_FLOAT_DIGITS = 16  # up to this many digits, a number whose Float64 is whole below 2**53 is whole
# the key "id" (its letters may be written \u0069 and \u0064) and a number: all of it, or what is
# before the number
_ID_NUMBER = r'"(?:i|\\u0069)(?:d|\\u0064)"\s*:\s*-?[\d.]+(?:[eE][+-]?\d+)?'
_BEFORE_NUMBER = r"^[^:]*:\s*-?"
# a line that may have one of 17 digits or more (twice as fast as asking for the escapes' ids)
_MAYBE_LONG = r'"id"\s*:\s*-?(?:\d\.?){17}|\\u00(?:69|64)'


def rewrite(source: Path, dest: Path, *, field: str) -> list[str]:
    """Write `source` to `dest` with each top-level value as a JSON string (null stays null); the
    keys, in the order they first show. InputError naming the first line that is not a JSON object.
    """
    keys: dict[str, None] = {}
    with source.open("rb") as lines, dest.open("w", encoding="utf-8") as out:
        for number, line in enumerate(lines, 1):
            if not line.strip(JSON_SPACE):
                continue
            if not line.strip():
                raise InputError(field, blank_but_not_space(number))
            text, names = _as_text(line, number, field)
            keys.update(dict.fromkeys(names))
            out.write(text + "\n")
    return list(keys)


def _as_text(line: bytes, number: int, field: str) -> tuple[str, list[str]]:
    """One line as Polars can read it into text columns, and its keys: numbers other than integers
    (1e400), and lists and objects, as JSON strings. An unpaired surrogate becomes NUL, as Polars
    reads a lone \\ud800 (validate rejects the row)."""
    try:
        written = line.decode("utf-8")
        record = _WRITTEN.decode(written)
        if isinstance(record, dict) and (b"[" in line or line.count(b"{") > 1):
            nested = _NESTED.decode(written).items()
            record |= {key: _ENCODER.encode(value) for key, value in nested if _is_nested(value)}
    except (ValueError, RecursionError) as exc:
        raise InputError(field, bad_jsonl_line(number, exc)) from None
    if not isinstance(record, dict):
        raise InputError(field, not_an_object(number))
    text = _ENCODER.encode(record)
    if text.isascii() or not _SURROGATE.search(text):
        return text, list(record)
    return _SURROGATE.sub(r"\\u0000", text), [_SURROGATE.sub("\x00", key) for key in record]


def _is_nested(value: Any) -> bool:
    return isinstance(value, list | dict)


def read_types(names: list[str], inferred: pl.Schema | None) -> dict[str, pl.DataType]:
    """The types a JSON Lines file's columns are read as: text (validate casts it), except a
    required number or boolean column every line of which holds a JSON number or boolean of a type
    that reads exactly (`inferred`: Polars' reading of the whole file; None when it was rewritten
    as text). Those keep their type, in the rejects file too (its CSV and JSON Lines downloads give
    the lines as sent: input_files/sent_lines.py); a column that mixes text and numbers, or an id
    or quantity written 3.0, stays text, as does one that mixes numbers and true or false, once
    reading it as a number fails (booleans_as_text)."""
    types: dict[str, pl.DataType] = dict.fromkeys(names, pl.String())
    for name, kinds in _EXACT.items():
        if inferred is not None and name in types and isinstance(inferred.get(name), kinds):
            types[name] = inferred[name]
    return types


def booleans_as_text(path: Path, types: pl.Schema) -> dict[str, pl.DataType] | None:
    """`types` with each number column of the JSON Lines file at `path` that also holds a JSON
    true or false read as text (Polars types a column of 1 and true as Int64, then cannot read the
    true); None when no column does."""
    numbers = [name for name, dtype in types.items() if dtype.is_numeric()]
    if not numbers:
        return None
    text = pl.scan_ndjson(path, schema=dict.fromkeys(numbers, pl.String()))
    found = text.select(pl.col(numbers).is_in(["true", "false"]).any()).collect(engine="streaming")
    mixed = [name for name in numbers if found.get_column(name).item()]
    return {**types, **dict.fromkeys(mixed, pl.String())} if mixed else None


def rounded_ids(path: Path, schema: pl.Schema) -> bool:
    """Whether Polars' reader would give an id other than the one written: it reads a number with
    a point or an exponent as a Float64 and gives its text as that Float64's digits, so
    9007199254740993.0 comes out as 9007199254740992. Below 2**53 a whole one is the number
    written, unless that has more digits than a Float64 holds (12.0000000000000001 reads as 12,
    as from a Parquet float column): such an id is looked for in the lines, as written."""
    if not isinstance(schema.get("id"), pl.Float64):  # integers come out as written, any length
        return False
    ids = pl.scan_ndjson(path, schema=schema).select(pl.col("id").abs().max())
    largest = ids.collect(engine="streaming").item()
    return (largest is not None and largest >= _EXACT_FLOAT) or _long_ids(path)


def _long_ids(path: Path) -> bool:
    """Whether a line has an "id" key holding a number with a point or an exponent and more than
    16 digits (3.000…0 aside): up to 16, a whole Float64 below 2**53 is the number written. Any
    "id" key of a line counts (a nested one, one in a string's text): a false alarm only sends the
    file the slow way, through Python's json module."""
    number = pl.element().str.replace(_BEFORE_NUMBER, "").str.replace(r"\.0*$", "")
    mantissa = number.str.replace(r"[eE].*$", "")
    long = number.str.contains("[.eE]") & (mantissa.str.count_matches(r"\d") > _FLOAT_DIGITS)
    line = pl.col("line")
    found = line.str.extract_all(_ID_NUMBER).list.eval(long).list.any().any()
    # most lines have no id of 17 digits: they are not looked at again
    candidates = pl.scan_lines(path).filter(line.str.contains(_MAYBE_LONG))
    return bool(candidates.select(found).collect(engine="streaming").item())
