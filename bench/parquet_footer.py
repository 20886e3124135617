"""The row groups of a Parquet file, read from its footer: Polars does not tell them, and neither
pyarrow nor DuckDB is installed. The footer is a Thrift struct in the compact protocol
(https://github.com/apache/parquet-format/blob/master/src/main/thrift/parquet.thrift): read whole,
then FileMetaData.row_groups (field 4), each RowGroup's num_rows (field 3)."""

import struct
from pathlib import Path
from typing import Any

_MAGIC = b"PAR1"
_ROW_GROUPS, _NUM_ROWS = 4, 3  # FileMetaData.row_groups, RowGroup.num_rows
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)


def row_group_sizes(path: Path) -> list[int]:
    """The rows of each row group of a Parquet file, or of each part file of a directory of them
    (in the order app/pipeline/store.py's scan reads them)."""
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"), key=lambda p: (len(p.name), p.name))
        return [rows for part in parts for rows in row_group_sizes(part)]
    with path.open("rb") as handle:
        handle.seek(-8, 2)
        length, magic = struct.unpack("<i4s", handle.read(8))
        if magic != _MAGIC:
            raise ValueError(f"{path} is not a Parquet file (it does not end with PAR1)")
        handle.seek(-8 - length, 2)
        footer = _Reader(handle.read(length)).struct()
    return [group[_NUM_ROWS] for group in footer.get(_ROW_GROUPS, [])]


class _Reader:
    """Thrift compact protocol, enough to read a footer: structs as {field id: value}."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def byte(self) -> int:
        self.at += 1
        return self.data[self.at - 1]

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def struct(self) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        field = 0
        while header := self.byte():
            kind, delta = header & 0x0F, header >> 4
            field = field + delta if delta else self.zigzag()
            fields[field] = True if kind == _TRUE else False if kind == _FALSE else self.value(kind)
        return fields

    def value(self, kind: int) -> Any:
        if kind in (_TRUE, _FALSE, _BYTE):  # a bool in a list or map is one byte, as a byte is
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            self.at += 8
            return struct.unpack_from("<d", self.data, self.at - 8)[0]
        if kind == _BINARY:
            size = self.varint()
            self.at += size
            return self.data[self.at - size : self.at]
        if kind in (_LIST, _SET):
            header = self.byte()
            size = header >> 4 if header >> 4 != 15 else self.varint()
            return [self.value(header & 0x0F) for _ in range(size)]
        if kind == _MAP:
            size = self.varint()
            kinds = self.byte() if size else 0
            return {self.value(kinds >> 4): self.value(kinds & 0x0F) for _ in range(size)}
        if kind == _STRUCT:
            return self.struct()
        raise ValueError(f"not a Thrift compact type: {kind}")
