"""The data directory's disk refusing a write, full (ENOSPC, EDQUOT) or not writable (EROFS,
EACCES, EPERM), recognised however Python or Polars reports it; and a stage that ran out of space
leaving nothing a retry writes again, so that one run filling the disk does not fail the next."""

import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl

from app.config import get_settings
from app.pipeline.input_files.sent_lines import sent_path
from app.pipeline.store import RunFiles

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
READ_ONLY = errno.EROFS
NO_PERMISSION = frozenset({errno.EACCES, errno.EPERM})
# Polars has no errno: "No space left on device (os error 28)", at times ": <path>" after it
_POLARS_OS_ERROR = re.compile(r"\(os error (\d+)\)(?:: (\S.*))?")
FREE_SPACE = (
    "free space there (delete pipelines you no longer need: their runs' files go with them; "
    "a lower PIPELINE_RETENTION_DAYS removes finished runs sooner) or move PIPELINE_DATA_DIR "
    "to a larger volume"
)
T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """A write the data directory's disk refused: the OS error number, and its file if known."""

    code: int
    filename: str | None = None

    @property
    def no_space(self) -> bool:
        return self.code in NO_SPACE

    def __str__(self) -> str:  # as Python says it: [Errno 28] No space left on device: '/d/f'
        return str(OSError(self.code, os.strerror(self.code), *filter(None, [self.filename])))


def refusal(exc: BaseException) -> Refusal | None:
    """The refused write behind `exc`, if that is what it is: `exc` itself, or an error it was
    raised from or while handling (inputs.py turns a failed read or write of an input file into
    an InputError, `from None`: a full disk is no bad file).

    A permission error counts only on a file under PIPELINE_DATA_DIR: one on a file under
    PIPELINE_INPUT_DIR is about the user's input, not the service's storage.
    """
    for error in _chain(exc):
        found = _os_error(error)
        if found is None:
            continue
        code, filename = found
        if code in NO_SPACE or code == READ_ONLY:  # only ever a write's
            return Refusal(code, filename)
        if code in NO_PERMISSION and filename is not None and _in_data_dir(filename):
            return Refusal(code, filename)
        return None
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _os_error(error: BaseException) -> tuple[int, str | None] | None:
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno, None if error.filename is None else os.fsdecode(error.filename)
    found = None
    if isinstance(error, OSError | pl.exceptions.PolarsError):
        found = _POLARS_OS_ERROR.search(str(error))
    return (int(found[1]), found[2]) if found else None


def _in_data_dir(filename: str) -> bool:
    """A path the service writes: under PIPELINE_DATA_DIR, and not a user's input file there
    (PIPELINE_INPUT_DIR may lie inside it: an unreadable input is the file's problem, a 422)."""
    settings = get_settings()
    try:
        path = Path(filename).resolve()
        inputs = settings.input_dir.resolve() if settings.input_dir else None
        ours = path.is_relative_to(settings.data_dir.resolve())
        return ours and not (inputs is not None and path.is_relative_to(inputs))
    except (OSError, RuntimeError):  # a symlink loop: not a path of ours to judge
        return False


class NoSpaceError(Exception):
    """A stage ran out of space in PIPELINE_DATA_DIR: what was removed, and how to free space."""


# What each stage writes, and a retry of it writes again; a failed part of it goes with it
# (generate starts by emptying the run's directory: whatever is there is its own)
_WRITES: dict[str, Callable[[RunFiles], list[Path]]] = {
    "generate": lambda files: [files.root],
    "ingest": lambda files: [files.ingested, files.rejects, sent_path(files.rejects)],
    "process": lambda files: [files.processed],
    "transform": lambda files: [files.transformed, files.root / f".{files.transformed.name}.parts"],
    "export": lambda files: [files.results.parent],
}


def freeing_space(work: Callable[[], T], files: RunFiles, stage: str, *, last_attempt: bool) -> T:
    """`work()`, one attempt of `stage`. When it runs out of space, what it wrote is removed (the
    stage's retry writes it again); on its last attempt, every file of the run but a finished
    ingest's rejects (the next attempt or run starts from nothing). NoSpaceError says so."""
    try:
        return work()
    except Exception as exc:
        refused = refusal(exc)
        if refused is None or not refused.no_space:
            raise
        if last_attempt:
            kept = {files.rejects, sent_path(files.rejects)}  # the rejects, their lines as sent
            keep = kept if stage not in ("generate", "ingest") else set()
            doomed = [p for p in _children(files.root) if p not in keep]
            removed = "the run's files were removed" + (
                ", all but its rejects file" if keep else ""
            )
        else:
            doomed = _WRITES[stage](files)
            removed = f"the {stage} stage's files were removed"
        for path in doomed:
            _remove(path, keep_dir=path == files.root)
        then = ", then retry the pipeline" if last_attempt else ""
        raise NoSpaceError(
            f"PIPELINE_DATA_DIR ({get_settings().data_dir}) is out of space ({refused}); "
            f"{removed}; {FREE_SPACE}{then}"
        ) from exc


def _children(root: Path) -> list[Path]:
    try:
        return list(root.iterdir())
    except FileNotFoundError:
        return []


def _remove(path: Path, *, keep_dir: bool = False) -> None:
    """Remove a file or a directory's tree; the run's own directory stays, emptied, so that its
    run still shows it failed rather than that its files were never written."""
    if keep_dir:
        for child in _children(path):
            _remove(child)
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
