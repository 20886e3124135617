"""JSON Lines values Polars' reader does not take as it takes the others: one it cannot read
(1e400, most unpaired surrogates) or a column with a list on one line and a number on another
([12.5] and 12.5) fails the whole file, and a lone \\ud800 is read as NUL. The file is then
rewritten with every value as text, and a row with a NUL in its text is marked, so that validate
rejects the row, as it does any unparseable value, not the file.

The rewrite reads each line with Python's json module, the slow way (about 5 s per million lines,
Polars takes 1), taken only for a file Polars cannot read; it streams, one line at a time.
"""

import json
import re
from pathlib import Path
from typing import Any

import polars as pl

from app.pipeline import stages
from app.pipeline.compression import InputError
from app.pipeline.locate import bad_jsonl_line, not_an_object

_SURROGATE = re.compile("[\ud800-\udfff]")  # left in a str only by an unpaired \ud800 escape
_WRITTEN = json.JSONDecoder(parse_float=str, parse_constant=str)  # 1e400 stays 1e400
_NESTED = json.JSONDecoder()  # for a list's or an object's JSON text: [12.5], not ["12.5"]
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def rewrite(source: Path, dest: Path, *, field: str) -> list[str]:
    """Write `source` to `dest` with each top-level value as a JSON string (null stays null); the
    keys, in the order they first show. InputError naming the first line that is not a JSON object.
    """
    keys: dict[str, None] = {}
    with source.open("rb") as lines, dest.open("w", encoding="utf-8") as out:
        for number, line in enumerate(lines, 1):
            if line.strip():
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


def mark_nul(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`frame` with stages.INPUT_PROBLEM naming a text column (name, or the file's own) holding a
    NUL: how Polars reads \\u0000 and a lone \\ud800, and what `rewrite` makes of any unpaired
    surrogate. A NUL in another column makes that value unparseable already."""
    schema = frame.collect_schema()
    texts = [name for name in schema if name == "name" or name not in stages.REQUIRED_COLUMNS]
    problem: Any = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.String))
    for name in texts:
        nul = pl.col(name).str.contains("\x00", literal=True)
        why = f"NUL character in {name} (\\u0000, or an unpaired surrogate such as \\ud800)"
        problem = problem.when(nul).then(pl.lit(why))
    return frame.with_columns(problem.otherwise(None).alias(stages.INPUT_PROBLEM))
