"""The file a multipart part carries, as its Content-Disposition names it: RFC 5987's
filename*=UTF-8''caf%C3%A9.csv first (some clients send it alone, and it wins over a plain
filename beside it, RFC 6266; python-multipart reads only the plain one), without the folders a
client may send (C:\\data\\f.csv is f.csv)."""

import re
from email.utils import decode_rfc2231
from pathlib import Path
from urllib.parse import unquote

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
