"""An input file whose content is of another format than the one it is read as: Parquet sent as
CSV, JSON Lines or a JSON array sent as CSV, a CSV sent as JSON Lines. Said as what the content
looks like and how to have it read as that: an upload's `format` field (which wins over its
name), an input_path's file name (the JSON create has no format field)."""

import json
from pathlib import Path

from app.pipeline.input_files.compression import InputError

_PARQUET_MAGIC = b"PAR1"
_UTF8_BOM = b"\xef\xbb\xbf"
_SPACE = b" \t\r\n"
_LOOKED_AT = 64 * 1024  # the start of the content looked at: the first line, or enough of it
_JSON = json.JSONDecoder()
_NO_OBJECTS = (
    'the file has only blank lines; JSON Lines has one JSON object per line, like {"id": 1}'
)


def how_to_send(fmt: str, field: str) -> str:
    """How to have an input read as `fmt`: input_path's format is its file name's."""
    if field == "input_path":
        return f"rename the file to end in .{fmt}"
    return f"send it as format={fmt}"


def check(path: Path, fmt: str, field: str) -> None:
    """InputError when the content of the plain (uncompressed) file at `path` is plainly of
    another format than `fmt`: what it looks like, where, and the fix."""
    start, line, whole = _start(path)
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
    if fmt == "csv" and _json_array(start, whole):
        raise InputError(
            field,
            f"line {line}: a JSON array: the content looks like JSON, not CSV; write it as JSON "
            'Lines, one JSON object per line like {"id": 1}, and ' + how_to_send("jsonl", field),
        )
    if fmt == "jsonl" and not start:
        raise InputError(field, _NO_OBJECTS)
    if fmt == "jsonl" and not start.startswith(b"{"):
        if _json_array(start, whole):
            what = 'a JSON array; JSON Lines has one JSON object per line, like {"id": 1}'
        elif _csv_header(start.split(b"\n", 1)[0]):
            what = (
                "comma-separated names: the content looks like CSV, not JSON Lines; "
                + how_to_send("csv", field)
            )
        else:
            what = 'not JSON Lines; JSON Lines has one JSON object per line, like {"id": 1}'
        raise InputError(field, f"line {line}: {what}")


def _json_array(start: bytes, whole: bool) -> bool:
    """Whether the content (`whole`, or its start) is a JSON array: one that parses, with nothing
    after it; or, cut short, a [ and a first item that parses, then a , or ]. A CSV header in
    brackets is not: [id],[name] or [-1 is a name],x."""
    if not start.startswith(b"["):
        return False
    text = start.decode("utf-8", "replace")  # a character cut at _LOOKED_AT is at the very end
    try:
        _, end = _JSON.raw_decode(text)
    except ValueError:
        return not whole and _first_item(text[1:].lstrip())
    return not text[end:].strip()


def _first_item(text: str) -> bool:
    """Whether `text` starts with a JSON value, then a , or ]."""
    try:
        _, end = _JSON.raw_decode(text)
    except ValueError:
        return False
    return text[end:].lstrip()[:1] in (",", "]")


def _csv_header(line: bytes) -> bool:
    """Whether a first line reads as a CSV header: names between commas, no JSON of any kind."""
    return b"," in line and not any(mark in line for mark in (b"{", b"}", b'":'))


def _start(path: Path) -> tuple[bytes, int, bool]:
    """The file's content from its first character that is not blank (a UTF-8 byte-order mark
    and the blank lines or spaces before it skipped), as far as _LOOKED_AT bytes; the number of
    the line it starts on; and whether that is all of it."""
    line = 1
    with path.open("rb") as handle:
        chunk = handle.read(_LOOKED_AT).removeprefix(_UTF8_BOM)
        content = chunk.lstrip(_SPACE)
        line += chunk.count(b"\n", 0, len(chunk) - len(content))
        while not content and (chunk := handle.read(_LOOKED_AT)):  # a long run of blank lines
            content = chunk.lstrip(_SPACE)
            line += chunk.count(b"\n", 0, len(chunk) - len(content))
        content += handle.read(max(0, _LOOKED_AT - len(content)))
        return content, line, not handle.read(1)
