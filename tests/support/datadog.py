"""A fresh interpreter with Datadog pointed where a test says: module state and sys.modules clean,
as the API and a flow-run process start."""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from app.config import PROJECT_ROOT


def dd_env(**dd: str) -> dict[str, str]:
    """This process's environment without its DD_* variables, with `dd` instead."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DD_")}, **dd}


def run_python(
    script: str, *args: str, timeout: float = 120, check: bool = True, **dd: str
) -> subprocess.CompletedProcess[str]:
    """Run `script` with `args` in a fresh interpreter with only the DD_* variables `dd`; it
    must exit 0 (unless not `check`)."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=PROJECT_ROOT,
        env=dd_env(**dd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


@contextmanager
def hung_agent() -> Iterator[int]:
    """The port of an agent that accepts connections and never answers: a socket that listens
    and never reads (the kernel completes the connections)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def log_lines(stderr: str) -> list[tuple[str, str, str]]:
    """A process's JSON log lines: (level, logger, message) each."""
    return [
        (line["level"], line["logger"], line["message"])
        for line in map(json.loads, stderr.splitlines())
    ]
