"""Decompressing users' xz inputs: every stream of a file, and a bound on the decoder's memory."""

import lzma
import struct
import zlib
from pathlib import Path

import pytest

from app.pipeline.input_files import compression
from app.pipeline.input_files.compression import InputError

HEADER = b"id,name,category,value,quantity,is_active,created_at\n"
ROW = b"1,a,A,10,1,true,2026-01-01\n"


def _asking_for_a_dictionary_of(code: int, data: bytes) -> bytes:
    """An xz stream of `data` whose block header asks the decoder for the LZMA2 dictionary of
    size `code` (39: 3 GiB), its CRC made right: what liblzma reserves before the first byte."""
    packed = bytearray(
        lzma.compress(data, format=lzma.FORMAT_XZ, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    )
    start = 12  # after the stream header
    size = (packed[start] + 1) * 4
    block = packed[start : start + size]
    props = block.index(b"\x21\x01", 2) + 2  # LZMA2's filter flags: id 0x21, one property byte
    block[props] = code
    block[-4:] = struct.pack("<I", zlib.crc32(bytes(block[:-4])))
    packed[start : start + size] = block
    return bytes(packed)


def test_every_stream_of_an_xz_file_is_read(tmp_path: Path) -> None:
    """`cat a.xz b.xz > c.xz` is one valid xz file: both parts are its contents."""
    source = tmp_path / "in.csv.xz"
    source.write_bytes(lzma.compress(HEADER) + lzma.compress(ROW * 3))
    assert compression.decompress(source, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == HEADER + ROW * 3


def test_an_xz_header_asking_for_gigabytes_of_memory_is_a_422_before_any(tmp_path: Path) -> None:
    """liblzma took whatever dictionary the header asked for (up to 4 GiB) and filled it as the
    output grew: a 156 kB upload held 1 GB in the reviewer's run."""
    source = tmp_path / "bomb.csv.xz"
    source.write_bytes(_asking_for_a_dictionary_of(39, HEADER + ROW))
    with pytest.raises(InputError) as refused:
        compression.decompress(source, tmp_path / "out.csv")
    assert str(refused.value) == (
        "file: needs more than 256 MiB of memory to decompress (the dictionary its header asks "
        "for); compress it again with xz -9 or lower"
    )
    assert not (tmp_path / "out.csv").exists()
    # the same stream asking for 64 MiB (xz -9's dictionary) is read
    source.write_bytes(_asking_for_a_dictionary_of(28, HEADER + ROW))
    assert compression.decompress(source, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == HEADER + ROW


def test_an_xz_file_cut_short_is_a_422(tmp_path: Path) -> None:
    source = tmp_path / "cut.csv.xz"
    source.write_bytes(lzma.compress(HEADER + ROW * 100)[:-20])
    with pytest.raises(InputError) as refused:
        compression.decompress(source, tmp_path / "out.csv")
    assert (
        str(refused.value) == "file: cannot decompress xz: the file ends before its xz stream does"
    )


def test_a_later_stream_that_is_corrupt_or_asks_too_much_is_a_422_not_a_shorter_file(
    tmp_path: Path,
) -> None:
    """An error in the second stream ended the file there, silently: 1,000 of 200,000 rows."""
    source = tmp_path / "in.csv.xz"
    second = bytearray(lzma.compress(ROW * 1000))
    second[len(second) // 2] ^= 0xFF  # inside its compressed data
    source.write_bytes(lzma.compress(HEADER) + bytes(second))
    with pytest.raises(InputError) as refused:
        compression.decompress(source, tmp_path / "out.csv")
    assert str(refused.value).startswith("file: cannot decompress xz: ")
    source.write_bytes(lzma.compress(HEADER) + _asking_for_a_dictionary_of(39, ROW))
    with pytest.raises(InputError) as refused:
        compression.decompress(source, tmp_path / "out.csv")
    assert str(refused.value).startswith("file: needs more than 256 MiB of memory")
    # bytes after the last whole stream that start none are ignored, as lzma.open does
    source.write_bytes(lzma.compress(HEADER + ROW) + b"not an xz stream")
    assert compression.decompress(source, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == HEADER + ROW
