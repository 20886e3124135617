"""A Prefect server of a test module's own (no worker, no deployment), for tests that need
Prefect's API and none of the shared end-to-end stacks."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from app.stack.topology import Stack
from tests.support.postgres import free_port


@contextlib.contextmanager
def own_prefect_server(root: Path) -> Iterator[str]:
    """A Prefect server whose home and logs are under `root`, stopped at the end: its API's URL."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    stack = Stack(
        env={**os.environ, "PREFECT_HOME": str(root / "prefect-home")},
        prefect_port=free_port(),
        state_dir=root,
        log_dir=root / "logs",
    )
    stack.start_server()
    try:
        yield stack.prefect_api_url
    finally:
        stack.stop()
