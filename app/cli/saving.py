"""Where `pipeline download` writes, and how: a regular file whole or not at all (a temporary file
beside it, renamed into place; or, for a file with other hard links, copied into it once whole),
anything else (a device such as /dev/null, a FIFO, a descriptor already open such as /dev/stdout:
app/cli/descriptors.py) written straight into, as a shell's redirect does.

A path the user named (`-o FILE`) is followed where it links, as a redirect follows it. A name the
API gave (`pipeline-1-run-2-results.parquet`, here or in `-o DIR`) is not: a link planted under
that name in a shared directory would otherwise have the server's bytes written wherever it
points (as root: anywhere); whatever is there is replaced, and only with --force."""

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import typer

from app.cli import descriptors
from app.cli.client import CliError, ExitCode

STDOUT = descriptors.STDOUT
Copy = Callable[[BinaryIO], int]


@dataclass(frozen=True)
class Saved:
    """What was written: `size` bytes into `target`, a regular file saved whole (`whole`), or
    written straight into something that is not a file (a device, a FIFO)."""

    target: Path
    size: int
    whole: bool

    def said(self) -> str:
        if self.whole:
            return f"saved {self.target} ({self.size:,} bytes)"
        return f"wrote {self.size:,} bytes to {self.target}"


def check_output(output: str | None, *, binary: bool, force: bool) -> None:
    """Bad usage of --output, said before anything is asked of the API: binary to a terminal, a
    directory that does not exist (`newdir/`, `nodir/x.parquet`: a typo would otherwise become a
    file, or a directory made where none was meant), a file where a directory is meant, a file
    that exists without --force; a descriptor (/dev/fd/3) the shell did not open."""
    if output is None:
        return
    descriptor = descriptors.named(output)
    if binary and (
        descriptors.is_terminal(descriptor)
        if descriptor is not None
        else descriptors.names_a_terminal(output)  # /dev/tty, /dev/pts/3
    ):
        raise typer.BadParameter(
            "Parquet is binary and would garble the terminal; save it with -o FILE, ask for "
            "text with --format csv or --format jsonl, or pipe it to a program",
            param_hint="--output",
        )
    if descriptor is not None:
        if not descriptors.is_open(descriptor):
            raise typer.BadParameter(
                f"{output} is descriptor {descriptor}, which is not open; open it in the shell "
                f"({descriptor}>FILE), or give a file",
                param_hint="--output",
            )
        return
    path = Path(output)
    if output.endswith(("/", os.sep)):  # Path() drops the slash that says "a directory"
        if not path.exists():
            raise typer.BadParameter(
                f"no directory {output}; create it first, or give a directory that exists",
                param_hint="--output",
            )
        if not path.is_dir():
            raise typer.BadParameter(
                f"{output} is not a directory; leave out the trailing /, or give a directory",
                param_hint="--output",
            )
    elif not path.is_dir() and not path.parent.is_dir():
        if path.parent.exists():  # a file where the directory would be (-o notes.txt/x)
            raise typer.BadParameter(
                f"{path.parent} is a file, not a directory to write {path.name} in; give a "
                "directory that exists",
                param_hint="--output",
            )
        raise typer.BadParameter(
            f"no directory {path.parent}/ to write {path.name} in; create it first, or give a "
            "directory that exists",
            param_hint="--output",
        )
    elif not path.is_dir():
        target(output, path.name, force=force)


@dataclass(frozen=True)
class Target:
    """The path to write, and whether the user named it (-o FILE): only then is a link followed
    and a device or FIFO written into."""

    path: Path
    named: bool


def target(output: str | None, name: str, *, force: bool) -> Target:
    """--output, or `name` (the API's name for the file) in the --output directory or here. What
    exists there is kept unless `force`: a file (or, at a path the user named, a link to one); a
    device or FIFO the user named is written into, nothing replaced."""
    given = Path(output) if output is not None else None
    if given is not None and not given.is_dir():
        chosen = Target(given, named=True)
    else:
        chosen = Target(given / name if given is not None else Path(name), named=False)
    exists = _regular(chosen.path) if chosen.named else _entry(chosen.path)
    if exists and not force:
        raise typer.BadParameter(
            f"{chosen.path} exists; pass --force to replace it, or --output another path",
            param_hint="--output" if output is not None else None,  # else "Invalid value: …"
        )
    return chosen


def _entry(path: Path) -> bool:
    """Whether anything, a link included (dangling or not), has this name."""
    return path.is_symlink() or path.exists()


def _regular(path: Path) -> bool:
    """Whether `path` is, or links to, a regular file."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def save(chosen: Target, copy: Copy) -> Saved:
    """Write what `copy` writes to the target: a regular file (at a path the user named, what a
    link points to) whole or not at all, keeping an existing file's permissions; a device or FIFO
    the user named straight into it."""
    path = chosen.path
    try:
        found = path.stat() if chosen.named else path.lstat()
    except FileNotFoundError:  # nothing there (or, named by the user, a link to nothing yet)
        found = None
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    mode = found.st_mode if found is not None else None
    if chosen.named and mode is not None and not stat.S_ISREG(mode):
        return Saved(path, _write_into(path, copy), whole=False)
    # a link the user named keeps linking: what it points to is replaced; a name the API gave
    # is replaced itself, whatever it was
    real = Path(os.path.realpath(path)) if chosen.named else path
    if mode is not None and stat.S_ISREG(mode):  # its permissions, never a set-id bit
        permissions = stat.S_IMODE(mode) & 0o777
    else:
        permissions = 0o666 & ~_umask()
    # a file the user named that has other names (hard links) keeps them, and its owner and ACLs:
    # written into once whole, not replaced by another file
    in_place = chosen.named and found is not None and found.st_nlink > 1
    size = _replace(real, copy, permissions, shown=path, in_place=in_place)
    return Saved(path, size, whole=True)


def save_into(descriptor: int, output: str, copy: Copy) -> Saved | None:
    """Write what `copy` writes into a descriptor already open (`-`, /dev/stdout, /dev/fd/3);
    what was written, or None when it went where stdout goes, where nothing else may be said."""
    shown = Path("stdout" if output == STDOUT else output)
    quiet = descriptors.is_stdout(descriptor)
    try:
        size = descriptors.write(descriptor, copy)
    except OSError as exc:
        if quiet and isinstance(exc, BrokenPipeError):
            raise  # the reader went away (| head): the command ends with 0, as for any output
        raise _cannot_write(shown, exc) from None
    return None if quiet else Saved(shown, size, whole=False)


def _write_into(path: Path, copy: Copy) -> int:
    """A device or FIFO (or a socket, which cannot be opened): opened and written, as `>` does."""
    try:
        with path.open("wb") as handle:
            return copy(handle)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def _replace(real: Path, copy: Copy, permissions: int, *, shown: Path, in_place: bool) -> int:
    """Download into a temporary file beside `real` (a failure leaves `real` as it was), then
    rename it over `real`, or (`in_place`) copy it into `real`."""
    try:
        descriptor, name = tempfile.mkstemp(
            dir=real.parent, prefix=f".{real.name}.", suffix=".part"
        )
    except OSError as exc:
        raise _cannot_write(shown, exc) from None
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            size = copy(handle)
        if in_place:
            _copy_into(real, partial)
        else:
            partial.chmod(permissions)  # mkstemp's 0600 otherwise
            os.replace(partial, real)
    except OSError as exc:
        raise _cannot_write(shown, exc) from None
    finally:
        partial.unlink(missing_ok=True)
    return size


def _copy_into(real: Path, partial: Path) -> None:
    """`partial`'s bytes over `real`'s, the same file (inode) kept: no set-id bit stays, as a
    write by anyone but root would drop it."""
    with partial.open("rb") as source, os.fdopen(os.open(real, os.O_WRONLY), "wb") as target:
        _room_for(target.fileno(), os.fstat(source.fileno()).st_size)
        mode = stat.S_IMODE(os.fstat(target.fileno()).st_mode)
        if mode & ~0o777:
            os.fchmod(target.fileno(), mode & 0o777)
        shutil.copyfileobj(source, target)
        target.truncate()


def _room_for(descriptor: int, size: int) -> None:
    """The blocks a file growing to `size` needs, taken before any of its bytes is written over:
    a disk or quota that cannot hold them fails the write with the old file as it was, not half
    new and half old (a file system that cannot reserve them is written into as it is)."""
    old = os.fstat(descriptor).st_size
    if size <= old:
        return
    try:
        os.posix_fallocate(descriptor, old, size - old)
    except OSError as exc:
        os.ftruncate(descriptor, old)  # what a failed reservation added, if anything
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise


def _cannot_write(path: Path, exc: OSError) -> CliError:
    return CliError(f"cannot write {path}: {exc.strerror or exc}", ExitCode.WRITE_FAILED)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
