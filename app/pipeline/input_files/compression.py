"""Input files as Polars can read them: decompressed (gzip, bz2, xz) into a scratch copy, within
PIPELINE_MAX_INPUT_BYTES, and JSON Lines without the UTF-8 byte-order mark Polars cannot read."""

import bz2
import gzip
import lzma
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from app.config import get_settings

COMPRESSIONS: dict[str, str] = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
_OPENERS: dict[str, Callable[..., Any]] = {"gzip": gzip.open, "bz2": bz2.open}
# the most memory an xz stream may ask for to be decompressed: `xz -9` needs 65 MiB; its header
# may ask for up to 4 GiB, which liblzma would take, for a file of a few hundred kB
XZ_MEMORY_LIMIT = 256 << 20
XZ_MAGIC = b"\xfd7zXZ\x00"
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (XZ_MAGIC, "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
)
UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20


class InputError(ValueError):
    """A whole-file problem with a user's input, answered with a 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def head(path: Path, size: int = 8) -> bytes:
    """The file's first `size` bytes."""
    with path.open("rb") as handle:
        return handle.read(size)


def compression_of(path: Path) -> str | None:
    """The compression the file's first bytes show (gzip, bz2, xz, zstd, zip), or None."""
    start = head(path)
    return next((name for magic, name in _MAGIC if start.startswith(magic)), None)


def too_large(size: int, *, field: str, what: str = "is") -> InputError | None:
    """The error for an input of `size` bytes past PIPELINE_MAX_INPUT_BYTES, or None."""
    limit = get_settings().max_input_bytes
    if size <= limit:
        return None
    return InputError(
        field,
        f"{what} more than {limit:,} bytes (PIPELINE_MAX_INPUT_BYTES); "
        "send a smaller file, or raise the limit",
    )


def decompress(source: Path, dest: Path, *, field: str = "file") -> bool:
    """Stream a gzip/bz2/xz file into `dest`; False (nothing written) when it is not compressed.

    Refused past PIPELINE_MAX_INPUT_BYTES of output, so a small archive cannot fill the disk.
    """
    compression = compression_of(source)
    if compression is None:
        return False
    if compression not in (*_OPENERS, "xz"):
        raise InputError(
            field,
            f"is {compression}-compressed, which is not supported; "
            "send it uncompressed or gzip/bz2/xz-compressed",
        )
    written = 0
    try:
        with dest.open("wb") as out:
            for chunk in _unpacked(source, compression):
                written += len(chunk)
                if refused := too_large(written, field=field, what="decompresses to"):
                    raise refused
                out.write(chunk)
    except lzma.LZMAError as exc:
        dest.unlink(missing_ok=True)
        if "memory" in str(exc).lower():
            raise InputError(
                field,
                f"needs more than {XZ_MEMORY_LIMIT >> 20} MiB of memory to decompress (the "
                "dictionary its header asks for); compress it again with xz -9 or lower",
            ) from None
        raise InputError(field, f"cannot decompress {compression}: {exc}") from None
    except (OSError, EOFError) as exc:
        dest.unlink(missing_ok=True)
        raise InputError(field, f"cannot decompress {compression}: {exc}") from None
    except InputError:
        dest.unlink(missing_ok=True)
        raise
    return True


def _unpacked(source: Path, compression: str) -> Iterator[bytes]:
    """The decompressed contents of `source`, a chunk at a time."""
    if compression == "xz":
        yield from _xz(source)
        return
    with _OPENERS[compression](source, "rb") as packed:
        while chunk := packed.read(_CHUNK):
            yield chunk


def _xz(source: Path) -> Iterator[bytes]:
    """Every stream of an xz file, decompressed with the decoder's memory bounded
    (lzma.open has no such bound). Bytes after a whole stream that start no other (no xz magic)
    are ignored, as lzma.open ignores them; an error inside any stream is raised."""
    with source.open("rb") as packed:
        decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)
        while True:
            if decoder.eof:
                data = decoder.unused_data
                while len(data) < len(XZ_MAGIC) and (more := packed.read(_CHUNK)):
                    data += more
                if not data.startswith(XZ_MAGIC):
                    return  # the end, or bytes after the last stream
                decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)
            elif decoder.needs_input:
                data = packed.read(_CHUNK)
                if not data:
                    raise EOFError("the file ends before its xz stream does")
            else:
                data = b""
            if chunk := decoder.decompress(data, max_length=_CHUNK):
                yield chunk


class Plain(NamedTuple):
    """An input as Polars can read it, and a directory of its own for any other copy of it."""

    path: Path
    scratch: Path


@contextmanager
def plain(path: Path, scratch: Path, fmt: str, *, field: str = "file") -> Iterator[Plain]:
    """The file itself, or a readable copy of it in `scratch` (decompressed; a JSON Lines file
    without its byte-order mark), and a directory beside it; both removed afterwards."""
    scratch.mkdir(parents=True, exist_ok=True)
    # a directory of this call's own: two requests checking one file at once once shared a name
    own = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=scratch))
    try:
        copy = own / "plain"
        source = copy if decompress(path, copy, field=field) else path
        if fmt == "jsonl" and head(source, len(UTF8_BOM)) == UTF8_BOM:
            _copy_without_bom(source, own / "unmarked")
            source = (own / "unmarked").replace(copy)
        if refused := too_large(source.stat().st_size, field=field):
            raise refused
        yield Plain(source, own)
    finally:
        shutil.rmtree(own, ignore_errors=True)


def _copy_without_bom(source: Path, dest: Path) -> None:
    with source.open("rb") as marked, dest.open("wb") as out:
        marked.seek(len(UTF8_BOM))
        shutil.copyfileobj(marked, out, _CHUNK)
