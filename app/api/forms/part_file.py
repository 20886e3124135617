"""The file a multipart part carries, as its Content-Disposition names it: RFC 5987's
filename*=UTF-8''caf%C3%A9.csv first (some clients send it alone, and it wins over a plain
filename beside it, RFC 6266; python-multipart reads only the plain one), without the folders a
client may send (C:\\data\\f.csv is f.csv). And the format of a `file` part sent as text, without
a file name."""

import re
from email.utils import decode_rfc2231
from pathlib import Path
from urllib.parse import unquote

from app.api.forms.form_refusals import FILE_FIELD, as_file
from app.echoed import cut
from app.pipeline.input_files.inputs import InputError, format_of

_EXTENDED_FILENAME = re.compile(rb"filename\*\s*=\s*([^;]+)", re.IGNORECASE)


def is_file(disposition: bytes, options: dict[bytes, bytes]) -> bool:
    """Whether the part is a file: it has a file name, even an empty one."""
    return b"filename" in options or _EXTENDED_FILENAME.search(disposition) is not None


def file_name(disposition: bytes, options: dict[bytes, bytes]) -> str:
    """The part's file name without its folders; "" when it has none."""
    name = _extended_file_name(disposition) or options.get(b"filename", b"").decode(
        "utf-8", "replace"
    )
    return Path(name.replace("\\", "/")).name


def _extended_file_name(disposition: bytes) -> str | None:
    found = _EXTENDED_FILENAME.search(disposition)
    if found is None:
        return None
    charset, _, value = decode_rfc2231(found[1].strip().strip(b'"').decode("latin-1"))
    try:
        return unquote(value, encoding=charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return None


_LONGEST_NAME = 1024  # bytes: a `file` part's text longer than this is no file's name


def format_of_text(path: Path, declared: str | None) -> str:
    """The format of a `file` part sent as text, with no file name (curl -F 'file=<orders.csv'
    reads the file into the part): the `format` field's, as the content arrived whole; without
    one, or when the text is a file's name (curl -F file=orders.csv), InputError saying how to
    send the file."""
    with path.open("rb") as text:
        start = text.read(_LONGEST_NAME + 1)
    named = start.decode("utf-8", "replace").strip() if len(start) <= _LONGEST_NAME else ""
    if named and "\n" not in named and _names_a_file(named):
        raise InputError(
            FILE_FIELD,
            f"got the text '{cut(named)}', not the file it names; send the file itself "
            f"({as_file(named)})",
        )
    if declared is None:
        raise InputError(
            FILE_FIELD,
            "sent as text, without a file name (as curl -F 'file=<data.csv' sends it), so its "
            f"format cannot be told; send it as a file ({as_file('')}), or send "
            "format=csv|jsonl|parquet with it",
        )
    return format_of("", declared)


def _names_a_file(text: str) -> bool:
    try:
        format_of(text)
    except InputError:
        return False
    return True
