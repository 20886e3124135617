"""`make clean STATE_DIR=…`: the state directory of a stopped stack deleted, and nothing else — only
a directory holding what `make up` keeps there, never /, the home directory, this checkout or a
directory above them, and never while a stack of it runs. Standard library only: `make clean`
runs it without the virtual environment too."""

import argparse
import shutil
import sys
from pathlib import Path

from app.stack.ledger import Ledger

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # app.config's, without its imports
# what a stack keeps in its state directory: the SQLite database with its journal and lock
# (app/stack/env.py, app/stack/locks.py), Prefect's home, the run files, the logs, the TMPDIR
STACK_ENTRIES = frozenset(
    {
        "pipelines.db",
        "pipelines.db-journal",
        "pipelines.db-wal",
        "pipelines.db-shm",
        "pipelines.db.stack.lock",
        "prefect",
        "data",
        "log",
        "tmp",
    }
)
# what only a stack makes there (a `data/` or `log/` of its own is anyone's name): its SQLite
# database or that database's lock, Prefect's home; else a stack's ledger in log/
MARKS = frozenset({"pipelines.db", "pipelines.db.stack.lock", "prefect"})
GIVE = "give the STATE_DIR the stack was started with (make up STATE_DIR=…)"


class NotAStateDirError(Exception):
    """The directory is not one a stack's state can be deleted from; the message says why."""


def refusal(state_dir: Path) -> str | None:
    """Why `state_dir` (an existing path) must not be deleted as a stack's state; None: it may."""
    shown = str(state_dir)
    resolved = state_dir.resolve()
    if resolved == PROJECT_ROOT / "var":  # the default state directory, whatever is in it
        return None
    if not resolved.is_dir():
        return f"STATE_DIR={shown} is not a directory; {GIVE}"
    protected = {Path("/"), Path.home().resolve(), PROJECT_ROOT}
    if any(resolved == place or resolved in place.parents for place in protected):
        return (
            f"STATE_DIR={shown} is {resolved}: the root, your home directory, this checkout or a "
            f"directory holding one of them is never a stack's state directory; {GIVE}"
        )
    entries = {entry.name for entry in resolved.iterdir()}
    if strangers := sorted(entries - STACK_ENTRIES):
        listed = ", ".join(strangers[:5]) + (", …" if len(strangers) > 5 else "")
        return (
            f"STATE_DIR={shown} holds files a stack does not make there ({listed}); delete it "
            f"yourself if it is what you mean, or {GIVE}"
        )
    if not entries:
        return f"STATE_DIR={shown} is empty: no stack's state is there; {GIVE}"
    if not entries & MARKS and not Ledger.all_in(resolved / "log"):  # data/ alone: anyone's
        return (
            f"STATE_DIR={shown} holds no stack's database, Prefect home or ledger, only "
            f"{', '.join(sorted(entries))}; delete it yourself if it is what you mean, or {GIVE}"
        )
    for ledger in Ledger.all_in(resolved / "log"):
        if (running := ledger.running()) is not None:
            return (
                f"a stack of STATE_DIR={shown} still runs (process {running.stack['pid']}); "
                f"stop it first: make down STATE_DIR={shown}"
            )
    return None


def clean(state_dir: Path) -> str:
    """Delete the stack's state directory; what was done, for the terminal."""
    if not state_dir.exists() and not state_dir.is_symlink():
        return f"nothing to delete: STATE_DIR={state_dir} does not exist"
    if (why := refusal(state_dir)) is not None:
        raise NotAStateDirError(why)
    shutil.rmtree(state_dir.resolve())
    if state_dir.is_symlink():  # the link to it, too
        state_dir.unlink()
    return f"deleted STATE_DIR={state_dir}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        print(clean(args.state_dir), flush=True)
    except NotAStateDirError as exc:
        print(f"make clean: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
