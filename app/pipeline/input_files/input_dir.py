"""Files a pipeline names under PIPELINE_INPUT_DIR: the name checked and kept as the user gave it
(relative to the directory), so the pipeline reads back as it can be sent again."""

import os
import re
import stat
from pathlib import Path

from app.config import get_settings
from app.pipeline.input_files.compression import InputError
from app.pipeline.store import uploads_dir

# a name whose format the create can tell (inputs.format_of): an example worth giving
_INPUT_NAME = re.compile(r"\.(?:csv|jsonl|ndjson|parquet|pq)(?:\.(?:gz|bz2|xz))?$", re.IGNORECASE)


def resolve_under(relative: str, base: Path | None, *, field: str = "input_path") -> Path:
    """The file `relative` names under `base`, as named: its symlinks kept (its name decides its
    format; each run follows them, so `latest.csv` is read as it points then), what comes before
    a '..' resolved. Never anything outside `base`: absolute paths, and '..' and symlinks leading
    out, are refused."""
    if base is None:
        raise InputError(
            field,
            "reading files from the server is off: set PIPELINE_INPUT_DIR, or upload the file",
        )
    if "\x00" not in relative and Path(relative).is_relative_to(uploads_dir()):
        raise InputError(field, f"{relative!r} is an uploaded file; upload it again instead")
    if "\x00" in relative:  # no file name holds one
        raise InputError(field, f"holds a NUL character (\\u0000); remove it: got {relative!r}")
    if Path(relative).is_absolute():
        raise InputError(field, f"must be relative to PIPELINE_INPUT_DIR; got {relative!r}")
    parts = Path(relative).parts
    cut = max((i + 1 for i, part in enumerate(parts) if part == ".."), default=0)
    try:
        root = base.resolve()
        named = root.joinpath(*parts[:cut]).resolve().joinpath(*parts[cut:])
        target = named.resolve()
        if not target.is_relative_to(root):
            raise InputError(field, f"{relative!r} is outside PIPELINE_INPUT_DIR")
        uploads = uploads_dir().resolve()
        if target.is_relative_to(uploads):  # another pipeline's, deleted with it
            raise InputError(field, f"{relative!r} is an uploaded file; upload it again instead")
        if target.is_dir():
            raise InputError(field, _a_directory(relative, target))
        if kind := special_kind(target):
            raise InputError(field, f"{relative!r} is {kind}, not a file; name a regular file")
        if not target.is_file():
            raise InputError(field, f"no file {relative!r} in PIPELINE_INPUT_DIR")
        if not named.is_relative_to(root):  # a link back in, from outside: not a name under it
            raise InputError(field, f"{relative!r} is outside PIPELINE_INPUT_DIR")
        folders = [folder for folder in named.parents if folder.is_relative_to(root)]
        if any(folder.resolve().is_relative_to(uploads) for folder in folders):
            # through a link into the uploads: the pipeline's delete would remove that folder
            raise InputError(field, f"{relative!r} is an uploaded file; upload it again instead")
        with target.open("rb"):  # readable by this process, not only there
            pass
    except (OSError, RuntimeError) as exc:  # a name too long, no permission, a symlink loop
        reason = f"cannot read {relative!r} in PIPELINE_INPUT_DIR ({_why(exc)}); "
        raise InputError(
            field, reason + "check the name and that the service's user may read the file"
        ) from None
    return named


def shown(stored: str | None) -> str | None:
    """A pipeline's stored input path as the API shows it: relative to PIPELINE_INPUT_DIR, as
    `input_path` takes it. An upload's, or a file's named under another PIPELINE_INPUT_DIR than
    today's, stays absolute: no create takes it back (a 422 says to upload the file again)."""
    input_dir = get_settings().input_dir
    if stored is None or input_dir is None or not Path(stored).is_absolute():
        return stored
    path = Path(stored)
    if path.is_relative_to(uploads_dir()):
        return stored
    try:
        root = input_dir.resolve()  # stored paths are under the resolved directory
    except (OSError, RuntimeError):
        return stored
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else stored


def _a_directory(named: str, directory: Path) -> str:
    """What to name instead of a directory: a file in it, such as the first input file found
    among its first entries (a directory of a million files is not listed whole)."""
    files = sorted(_input_files(directory))
    example = f", such as {(Path(named) / files[0]).as_posix()!r}" if files else ""
    return f"{named!r} is a directory in PIPELINE_INPUT_DIR; name a file in it{example}"


def _input_files(directory: Path, looked_at: int = 1000) -> list[str]:
    """The names of input files (by their suffix) among the first `looked_at` entries."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for _, entry in zip(range(looked_at), entries, strict=False):
                if entry.is_file() and _INPUT_NAME.search(entry.name):
                    found.append(entry.name)
    except OSError:  # not readable: the message names no file in it
        pass
    return found


def _why(exc: OSError | RuntimeError) -> str:
    if isinstance(exc, RuntimeError):  # Python 3.11's Path.resolve: "Symlink loop from …"
        return "a symlink loop"
    return exc.strerror or str(exc)


def within(path: Path, roots: list[Path]) -> bool:
    """Whether `path`, resolved, lies under one of `roots` (resolved); False for a symlink loop."""
    try:
        resolved = path.resolve()
    except RuntimeError:
        return False
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


def readable_source(path: Path, input_dir: Path | None) -> Path:
    """The input file a run may read, whatever the database says: an upload only where uploads
    are, a file of PIPELINE_INPUT_DIR only under it, and never one that leads (a symlink
    re-pointed) into the uploads directory, to another pipeline's upload."""
    uploads = uploads_dir()
    if path.is_relative_to(uploads):
        allowed, refused = [uploads], []
    else:
        allowed = [input_dir] if input_dir else []
        refused = [uploads]
    if within(path, refused):
        raise InputError(
            "input_path",
            f"{path} leads into the uploads directory, to another pipeline's upload; point it "
            "at a file of PIPELINE_INPUT_DIR",
        )
    if not allowed:
        raise InputError(
            "input_path",
            f"{path} is a server file, and reading them is off in this worker "
            "(PIPELINE_INPUT_DIR is unset): set it, in every process, to the directory the "
            "pipeline was made with",
        )
    if not within(path, allowed):
        if _named_inside(path, allowed):
            raise InputError(
                "input_path",
                f"{shown(str(path)) or path!r} leads outside PIPELINE_INPUT_DIR now (a link "
                "re-pointed?); point it back at a file in it, or create the pipeline again",
            )
        raise InputError(
            "input_path", f"{path} is outside the uploads directory and PIPELINE_INPUT_DIR"
        )
    if path.is_dir():  # a file replaced by a directory since, or a link moved on to one
        named = shown(str(path)) or str(path)
        raise InputError(
            "input_path",
            f"{_a_directory(named, path)}, and create the pipeline again with that input_path",
        )
    if kind := special_kind(path):  # a named pipe's reader waits for a writer: the run hung
        named = shown(str(path)) or str(path)
        raise InputError(
            "input_path",
            f"{named!r} is {kind} now, not a file; put the file back, or create the pipeline "
            "again with another input_path",
        )
    return path


_SPECIAL = {
    stat.S_ISFIFO: "a named pipe",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


def _named_inside(path: Path, roots: list[Path]) -> bool:
    """Whether `path`, by its name (not where it leads), is under one of `roots`."""
    try:
        return any(path.is_relative_to(root.resolve()) for root in roots)
    except (OSError, RuntimeError):
        return False


def special_kind(path: Path) -> str | None:
    """What `path` leads to when it is no regular file nor a directory (a named pipe, …), else
    None. Reading a named pipe waits for a writer: a run stayed running, its worker's slot held."""
    try:
        mode = path.stat().st_mode
    except (OSError, RuntimeError):
        return None  # gone, or unreadable: said where it is read
    return next((kind for test, kind in _SPECIAL.items() if test(mode)), None)
