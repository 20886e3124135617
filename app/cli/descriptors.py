"""`pipeline download -o` to a descriptor already open: `-`, /dev/stdout, /dev/stderr, /dev/fd/N,
/proc/self/fd/N, or a link that leads to one. What the shell opened there (`> out.csv`, `>> log`,
`> >(gzip)`) is written into, at its position and with its flags, as a redirect is: following the
link to the file and renaming another over it replaced out.csv, appended to nothing and left the
process substitution without its input."""

import contextlib
import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO, TextIO

STDOUT = "-"
# the names of a descriptor whatever /dev holds (a container may lack /dev/stdout)
_NAMED = re.compile(
    r"/dev/(?:fd/(?P<n>[0-9]+)|std(?P<std>in|out|err))|/proc/self/fd/(?P<self>[0-9]+)"
)
_STANDARD = {"in": 0, "out": 1, "err": 2}
_MAX_LINKS = 40  # as many as the kernel follows before it says ELOOP


def named(output: str) -> int | None:
    """The descriptor `output` names (`-` is stdout's), or None when it is a path of its own."""
    if output == STDOUT:
        return 1
    path = os.path.abspath(output)
    for _ in range(_MAX_LINKS):
        if match := _NAMED.fullmatch(os.path.normpath(path)):
            return _STANDARD[match["std"]] if match["std"] else int(match["n"] or match["self"])
        directory, name = os.path.split(path)
        directory = os.path.realpath(directory)  # /dev/fd/3 → /proc/1234/fd/3
        if directory in _own_descriptors() and re.fullmatch("[0-9]+", name):
            return int(name)
        try:
            link = os.readlink(os.path.join(directory, name))
        except OSError:  # not a link, or nothing there: a file to make or replace
            return None
        path = os.path.join(directory, link)  # an absolute link replaces the directory
    return None


def _own_descriptors() -> set[str]:
    """Where /proc/self/fd and /proc/thread-self/fd lead, for this process and thread."""
    pid = os.getpid()
    return {f"/proc/{pid}/fd", f"/proc/{pid}/task/{threading.get_native_id()}/fd"}


def is_open(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return False
    return True


def is_terminal(descriptor: int) -> bool:
    """Whether the descriptor is a terminal, which binary output would garble."""
    stream = _stream(descriptor)
    return stream.isatty() if stream is not None else os.isatty(descriptor)


def names_a_terminal(path: str) -> bool:
    """Whether the path is a terminal's device (/dev/tty, /dev/pts/3), opened to be sure (a
    /dev/tty without a controlling terminal is none: writing to it fails and says so)."""
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        opened = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.isatty(opened)
    finally:
        os.close(opened)


def is_stdout(descriptor: int) -> bool:
    """Whether what the descriptor writes is what stdout writes (`3>&1`, `3>>out` with `>out`):
    a line saying what was written would end up in the data."""
    if descriptor == 1:
        return True
    try:
        this, out = os.fstat(descriptor), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (a test's runner captures it)
        return False
    return (this.st_dev, this.st_ino) == (out.st_dev, out.st_ino)


def write(descriptor: int, copy: Callable[[BinaryIO], int]) -> int:
    """What `copy` writes, into the open descriptor (stdout and stderr through Python's own
    streams, so that nothing they hold is written after it)."""
    with _binary(descriptor) as handle:
        size = copy(handle)
        handle.flush()
    return size


def _text(descriptor: int) -> TextIO | None:
    """sys.stdout for descriptor 1, sys.stderr for 2 (looked up now: a test's runner swaps them)."""
    return {1: sys.stdout, 2: sys.stderr}.get(descriptor)


def _stream(descriptor: int) -> BinaryIO | None:
    text = _text(descriptor)
    return text.buffer if text is not None else None


@contextlib.contextmanager
def _binary(descriptor: int) -> Iterator[BinaryIO]:
    text = _text(descriptor)
    if text is not None:
        text.flush()  # what it holds goes first
        try:
            yield text.buffer
        except OSError:
            _discard(text)
            raise
        return
    with os.fdopen(os.dup(descriptor), "wb") as handle:  # the dup shares position and flags
        yield handle


def _discard(text: TextIO) -> None:
    """Point a stream that failed (disk full) at /dev/null: what it still holds would fail again
    as Python exits, which then exits 120 instead of the command's own code."""
    try:
        descriptor = text.fileno()
    except (OSError, ValueError):  # a test's runner's stream has none
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
