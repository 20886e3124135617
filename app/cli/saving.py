"""Where `pipeline download` writes, and how: a regular file whole or not at all (a temporary file
beside it, renamed into place), anything else (a device such as /dev/null, a FIFO) written
straight into, as a shell's redirect does; a symbolic link followed, never replaced."""

import os
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import typer

from app.cli.client import CliError, ExitCode

STDOUT = "-"
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


def terminal() -> bool:
    """Whether stdout is a terminal, which binary output would garble."""
    return sys.stdout.isatty()


def check_output(output: str | None, *, binary: bool, force: bool) -> None:
    """Bad usage of --output, said before anything is asked of the API: binary to a terminal, a
    directory that does not exist (`newdir/`, `nodir/x.parquet`: a typo would otherwise become a
    file, or a directory made where none was meant), a file where a directory is meant, a file
    that exists without --force."""
    if output == STDOUT:
        if binary and terminal():
            raise typer.BadParameter(
                "Parquet is binary and would garble the terminal; save it with -o FILE, ask for "
                "text with --format csv or --format jsonl, or pipe it to a program",
                param_hint="--output",
            )
        return
    if output is None:
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
        raise typer.BadParameter(
            f"no directory {path.parent}/ to write {path.name} in; create it first, or give a "
            "directory that exists",
            param_hint="--output",
        )
    elif not path.is_dir():
        target(output, path.name, force=force)


def target(output: str | None, name: str, *, force: bool) -> Path:
    """The path to write: --output, or `name` (the API's name for the file) in the --output
    directory or here. An existing file is kept unless `force`; a device or FIFO is written
    into, nothing is replaced."""
    given = Path(output) if output is not None else None
    if given is None:
        path = Path(name)
    elif given.is_dir():
        path = given / name
    else:
        path = given
    if not force and _regular(path):
        raise typer.BadParameter(
            f"{path} exists; pass --force to replace it, or --output another path",
            param_hint="--output" if output is not None else None,  # else "Invalid value: …"
        )
    return path


def _regular(path: Path) -> bool:
    """Whether `path` is, or links to, a regular file."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def save(path: Path, copy: Copy) -> Saved:
    """Write what `copy` writes to `path`: a regular file (what a link to one points to) whole or
    not at all, keeping an existing file's permissions; anything else straight into it."""
    try:
        mode = path.stat().st_mode  # a link followed
    except FileNotFoundError:  # a dangling link too: the file it names is made
        mode = None
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    if mode is not None and not stat.S_ISREG(mode):
        return Saved(path, _write_into(path, copy), whole=False)
    real = Path(os.path.realpath(path))  # a link keeps linking: what it points to is replaced
    permissions = 0o666 & ~_umask() if mode is None else stat.S_IMODE(mode)
    return Saved(path, _replace(real, copy, permissions, shown=path), whole=True)


def _write_into(path: Path, copy: Copy) -> int:
    """A device or FIFO (or a socket, which cannot be opened): opened and written, as `>` does."""
    try:
        with path.open("wb") as handle:
            return copy(handle)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def _replace(real: Path, copy: Copy, permissions: int, *, shown: Path) -> int:
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
        partial.chmod(permissions)  # mkstemp's 0600 otherwise
        os.replace(partial, real)
    except OSError as exc:
        raise _cannot_write(shown, exc) from None
    finally:
        partial.unlink(missing_ok=True)
    return size


def _cannot_write(path: Path, exc: OSError) -> CliError:
    return CliError(f"cannot write {path}: {exc.strerror or exc}", ExitCode.WRITE_FAILED)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
