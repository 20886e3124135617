"""A hard-linked file written in place (app/cli/saving.py) on a disk that cannot hold the new
content: the write fails with the old file as it was. It was written over from its first byte
until the disk was full, new bytes followed by the old file's tail."""

import errno
import os
from pathlib import Path

import pytest

from app.cli import saving
from tests.support.tmpfs import fill, tmpfs


def test_a_linked_file_the_disk_cannot_hold_anew_is_left_as_it_was(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        real = disk / "results.csv"
        real.write_bytes(b"old,content\n" * 100)
        os.link(real, disk / "linked.csv")
        partial = disk / ".results.csv.partial"
        partial.write_bytes(b"n" * (300 << 10))
        fill(disk)

        with pytest.raises(OSError) as full:
            saving._copy_into(real, partial)

        assert full.value.errno == errno.ENOSPC
        assert (disk / "linked.csv").read_bytes() == b"old,content\n" * 100
        assert os.stat(real).st_nlink == 2
