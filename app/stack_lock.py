"""What a running local stack holds for itself: its SQLite database and its run files. Two stacks
given one database (DATABASE_URL in `.env`, read by both) but Prefect servers of their own failed
each other's runs: each watchdog found the other's flow runs missing from its own Prefect ("its
Prefect flow run no longer exists"). A stack takes an exclusive lock beside each as it starts,
and a second one is refused, naming what they share; the kernel drops the locks however the stack
ends."""

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url

LOCK_NAME = ".stack.lock"


def shared_paths(env: Mapping[str, str]) -> dict[str, Path]:
    """What the stack's processes will use that only one stack may: by setting, its lock file."""
    paths = {"PIPELINE_DATA_DIR": Path(env["PIPELINE_DATA_DIR"]) / LOCK_NAME}
    url = make_url(env["DATABASE_URL"])
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(url.database)
        paths["DATABASE_URL"] = database.with_name(database.name + LOCK_NAME)
    return paths


def claim(env: Mapping[str, str]) -> list[int]:
    """Lock what the stack will use; RuntimeError naming it when another running stack has it."""
    held: list[int] = []
    for setting, lock in shared_paths(env).items():
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            release(held)
            used = env[setting] if setting == "DATABASE_URL" else lock.parent
            raise RuntimeError(
                f"another running stack uses {setting} ({used}): "
                "two stacks on one database or data directory, each with its own Prefect server, "
                f"fail each other's runs; stop that stack, or give this one its own {setting} "
                "(set in the environment or .env, it wins over STATE_DIR)"
            ) from None
        held.append(fd)
    return held


def release(held: list[int]) -> None:
    while held:
        os.close(held.pop())
