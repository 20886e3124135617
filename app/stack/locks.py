"""What a running local stack holds for itself: its database and its run files. Two stacks given
one database (DATABASE_URL in `.env`, read by both) but Prefect servers of their own failed each
other's runs: each watchdog found the other's flow runs missing from its own Prefect ("its
Prefect flow run no longer exists"). A stack takes an exclusive lock beside each file as it
starts — a session-level advisory lock in a PostgreSQL database, which may be another machine's —
and a second one is refused, naming what they share; the kernel (the database server) drops the
locks however the stack ends. Only stacks take them: the API replicas of docker-compose.yml share
one database on purpose, and take none."""

import contextlib
import fcntl
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config import async_database_url
from app.stack.advisory_lock import AdvisoryLock

LOCK_NAME = ".stack.lock"
STACK_KEY = (
    1  # the advisory lock a stack holds in its PostgreSQL database (app/stack/advisory_lock.py)
)


@dataclass
class Held:
    """What a running stack holds: lock files' descriptors, PostgreSQL databases' locks."""

    files: list[int] = field(default_factory=list)
    databases: list[AdvisoryLock] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.databases)


def shared_paths(env: Mapping[str, str]) -> dict[str, Path]:
    """What the stack's processes will use that only one stack may: by setting, its lock file."""
    paths = {"PIPELINE_DATA_DIR": Path(env["PIPELINE_DATA_DIR"]) / LOCK_NAME}
    url = make_url(env["DATABASE_URL"])
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(url.database)
        paths["DATABASE_URL"] = database.with_name(database.name + LOCK_NAME)
    return paths


def claim(env: Mapping[str, str]) -> Held:
    """Lock what the stack will use; RuntimeError naming it when another running stack has it.
    Refused, it leaves nothing it made: a state directory holding only `data/.stack.lock` was one
    `make clean` would not remove ("only data")."""
    held = Held()
    made: list[Path] = []  # directories and lock files this claim created, in that order
    try:
        for setting, lock in shared_paths(env).items():
            made += _missing(lock.parent)
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = _open_lock(lock, made)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                used = env[setting] if setting == "DATABASE_URL" else lock.parent
                raise RuntimeError(_refusal(setting, used)) from None
            held.files.append(fd)
        database_url = async_database_url(env["DATABASE_URL"])  # postgresql:// as Settings takes it
        if make_url(database_url).get_backend_name() == "postgresql":
            held.databases.append(_lock_database(database_url))
    except BaseException:
        _remove(made)  # while still locked: a stack opening one meanwhile finds it locked
        release(held)
        raise
    return held


def _missing(directory: Path) -> list[Path]:
    """The directories `mkdir(parents=True)` of `directory` makes, outermost first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing[::-1]


def _open_lock(lock: Path, made: list[Path]) -> int:
    """The lock file, opened for its lock; noted in `made` when this call created it."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    made.append(lock)
    return fd


def _remove(made: list[Path]) -> None:
    """What a refused claim made, newest first: a directory only while empty."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink()


def _lock_database(url: str) -> AdvisoryLock:
    lock = AdvisoryLock(url, STACK_KEY, holder="data-pipeline stack")
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        taken = lock.take()
    except Exception as exc:
        raise RuntimeError(
            f"cannot lock DATABASE_URL ({shown}) for this stack: {type(exc).__name__}: {exc}"
        ) from exc
    if taken:
        return lock
    try:
        holder = lock.held_by()
    finally:
        lock.release()
    raise RuntimeError(_refusal("DATABASE_URL", shown if holder is None else f"{shown}, {holder}"))


def _refusal(setting: str, used: object) -> str:
    return (
        f"another running stack uses {setting} ({used}): "
        "two stacks on one database or data directory, each with its own Prefect server, "
        f"fail each other's runs; stop that stack, or give this one its own {setting} "
        "(set in the environment or .env, it wins over STATE_DIR)"
    )


def release(held: Held) -> None:
    while held.files:
        os.close(held.files.pop())
    while held.databases:
        held.databases.pop().release()
