"""An input file whose content is of another format than the one it is read as: Parquet sent as
CSV, JSON Lines or a JSON array sent as CSV, a CSV sent as JSON Lines. Said as what the content
looks like and how to have it read as that: an upload's `format` field (which wins over its
name), an input_path's file name (the JSON create has no format field)."""

import re
from pathlib import Path

from app.pipeline.compression import InputError

_PARQUET_MAGIC = b"PAR1"
_UTF8_BOM = b"\xef\xbb\xbf"
_SPACE = b" \t\r\n"
_LOOKED_AT = 64 * 1024  # the start of the content looked at: the first line, or enough of it
# after a "[": what a JSON array's first item starts with ("[id],[name]" is a CSV header)
_ARRAY_ITEM = re.compile(rb"\[[ \t\r\n]*(?:[{\[\]\"0-9-]|true|false|null|$)")


def how_to_send(fmt: str, field: str) -> str:
    """How to have an input read as `fmt`: input_path's format is its file name's."""
    if field == "input_path":
        return f"rename the file to end in .{fmt}"
    return f"send it as format={fmt}"


def check(path: Path, fmt: str, field: str) -> None:
    """InputError when the content of the plain (uncompressed) file at `path` is plainly of
    another format than `fmt`: what it looks like, where, and the fix."""
    start, line = _start(path)
    if fmt != "parquet" and start.startswith(_PARQUET_MAGIC):
        raise InputError(
            field, f"the content is Parquet, not {fmt}; {how_to_send('parquet', field)}"
        )
    if fmt == "parquet" and not start.startswith(_PARQUET_MAGIC):
        raise InputError(field, "not a Parquet file (it does not start with PAR1)")
    if fmt == "csv" and start.startswith(b"{"):
        raise InputError(
            field,
            f"line {line}: a JSON object: the content looks like JSON Lines, not CSV; "
            + how_to_send("jsonl", field),
        )
    if fmt == "csv" and _ARRAY_ITEM.match(start):
        raise InputError(
            field,
            f"line {line}: a JSON array: the content looks like JSON, not CSV; write it as JSON "
            'Lines, one JSON object per line like {"id": 1}, and ' + how_to_send("jsonl", field),
        )
    if fmt == "jsonl" and not start.startswith(b"{"):
        if start.startswith(b"["):
            what = 'a JSON array; JSON Lines has one JSON object per line, like {"id": 1}'
        elif _csv_header(start.split(b"\n", 1)[0]):
            what = (
                "comma-separated names: the content looks like CSV, not JSON Lines; "
                + how_to_send("csv", field)
            )
        else:
            what = 'not JSON Lines; JSON Lines has one JSON object per line, like {"id": 1}'
        raise InputError(field, f"line {line}: {what}")


def _csv_header(line: bytes) -> bool:
    """Whether a first line reads as a CSV header: names between commas, no JSON of any kind."""
    return b"," in line and not any(mark in line for mark in (b"{", b"}", b'":'))


def _start(path: Path) -> tuple[bytes, int]:
    """The file's content from its first character that is not blank (a UTF-8 byte-order mark
    and the blank lines or spaces before it skipped), as far as _LOOKED_AT bytes; and the number
    of the line it starts on."""
    line = 1
    with path.open("rb") as handle:
        chunk = handle.read(_LOOKED_AT).removeprefix(_UTF8_BOM)
        content = chunk.lstrip(_SPACE)
        line += chunk.count(b"\n", 0, len(chunk) - len(content))
        while not content and (chunk := handle.read(_LOOKED_AT)):  # a long run of blank lines
            content = chunk.lstrip(_SPACE)
            line += chunk.count(b"\n", 0, len(chunk) - len(content))
        return content + handle.read(max(0, _LOOKED_AT - len(content))), line
