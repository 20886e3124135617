"""One real stack per backend for the end-to-end tests: Prefect server, worker, API as processes."""

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from app.stack.topology import Stack
from tests.conftest import new_database_url, use_settings
from tests.support.postgres import create_database, free_port


@dataclass
class RunningStack:
    stack: Stack
    database_url: str
    data_dir: Path
    backend: str


@contextmanager
def started_stack(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_root: Path,
    *,
    name: str,
    workers: int = 1,
    worker_limit: int = 4,
    env: dict[str, str] | None = None,
) -> Iterator[RunningStack]:
    """A whole stack on `backend`: its own app database, Prefect server database, ports, files."""
    root = tmp_root / f"stack-{name}"
    stack_env = {
        **os.environ,
        "DATABASE_URL": new_database_url(backend, request, tmp_root),
        "PIPELINE_DATA_DIR": str(root / "data"),
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_LOGGING_LEVEL": "INFO",
        # a quick watchdog, so the fault tests see stranded runs settled within seconds
        "PIPELINE_HEARTBEAT_SECONDS": "2",
        "PIPELINE_STALE_HEARTBEAT_SECONDS": "20",
        "PIPELINE_WATCHDOG_INTERVAL_SECONDS": "2",
        **(env or {}),
    }
    if backend == "postgresql":
        stack_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = create_database(
            request.getfixturevalue("pg_base_url"), f"prefect_{name}", extensions=("pg_trgm",)
        )
    stack = Stack(
        env=stack_env,
        prefect_port=free_port(),
        api_port=free_port(),
        workers=workers,
        worker_limit=worker_limit,
        state_dir=root,  # its TMPDIR too: root / "tmp"
        log_dir=root / "logs",
    )
    stack.start()
    try:
        yield RunningStack(stack, stack_env["DATABASE_URL"], root / "data", backend)
    finally:
        stack.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def running_stack(request: pytest.FixtureRequest, tmp_root: Path) -> Iterator[RunningStack]:
    """The stack the end-to-end tests share, once per backend."""
    with started_stack(request.param, request, tmp_root, name=request.param) as running:
        yield running


@pytest.fixture
async def stack(running_stack: RunningStack) -> AsyncIterator[RunningStack]:
    """The running stack, with this test process's settings pointed at the same database/server
    for the test, and back to what they were after it (later tests expect Prefect unreachable)."""
    names = ("DATABASE_URL", "PREFECT_API_URL", "PIPELINE_DATA_DIR")
    before = {name: os.environ[name] for name in names}
    await use_settings(
        DATABASE_URL=running_stack.database_url,
        PREFECT_API_URL=running_stack.stack.prefect_api_url,
        PIPELINE_DATA_DIR=str(running_stack.data_dir),
    )
    yield running_stack
    await use_settings(**before)


@pytest.fixture
async def api(stack: RunningStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.stack.api_url, timeout=30) as http:
        yield http


@pytest.fixture
async def prefect(stack: RunningStack) -> AsyncIterator[PrefectClient]:
    async with PrefectClient(api=stack.stack.prefect_api_url) as client:
        yield client
