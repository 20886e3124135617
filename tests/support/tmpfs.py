"""A real, small tmpfs for the tests of a full (ENOSPC) or read-only (EROFS) data directory:
mounted for one test and unmounted after it. Mounting needs root."""

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SIZE = "20m"


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextmanager
def tmpfs(path: Path, *, size: str = SIZE) -> Iterator[Path]:
    """`path` as a tmpfs of `size`, unmounted afterwards (lazily if a test left a file open)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (these tests fill a real 20 MB file system)")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("needs mount and umount (util-linux) to mount a tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.skip(f"needs CAP_SYS_ADMIN to mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if _run("umount", str(path)).returncode != 0:
            _run("umount", "-l", str(path))


def read_only(path: Path) -> None:
    """Remount the tmpfs at `path` read-only."""
    remounted = _run("mount", "-o", "remount,ro", str(path))
    assert remounted.returncode == 0, remounted.stderr


def fill(path: Path) -> Path:
    """Take every free block of the file system `path` is on with one file; that file."""
    filler = path / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (1 << 20, 4096):  # a page at a time at the end: nothing left over
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    assert shutil.disk_usage(path).free == 0
    return filler


@contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """`path` (a directory) immutable: creating anything in it is EPERM, for root too."""
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr (e2fsprogs) to make a directory immutable")
    marked = _run("chattr", "+i", str(path))
    if marked.returncode != 0:
        pytest.skip(f"needs a file system with the immutable flag: {marked.stderr.strip()}")
    try:
        yield path
    finally:
        _run("chattr", "-i", str(path))
