"""One real stack per backend for the end-to-end tests: Prefect server, worker, API as processes."""

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from app.devstack import Stack
from tests.conftest import new_database_url, use_settings
from tests.support.postgres import create_database, free_port


@dataclass
class RunningStack:
    stack: Stack
    database_url: str
    data_dir: Path
    backend: str


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def running_stack(request: pytest.FixtureRequest, tmp_root: Path) -> Iterator[RunningStack]:
    """The whole stack on `backend`: the app's database and the Prefect server's own database."""
    backend = request.param
    root = tmp_root / f"stack-{backend}"
    env = {
        **os.environ,
        "DATABASE_URL": new_database_url(backend, request, tmp_root),
        "PIPELINE_DATA_DIR": str(root / "data"),
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    if backend == "postgresql":
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = create_database(
            request.getfixturevalue("pg_base_url"), "prefect", extensions=("pg_trgm",)
        )
    stack = Stack(env=env, prefect_port=free_port(), api_port=free_port(), log_dir=root / "logs")
    stack.start()
    try:
        yield RunningStack(stack, env["DATABASE_URL"], root / "data", backend)
    finally:
        stack.stop()


@pytest.fixture
async def stack(running_stack: RunningStack) -> AsyncIterator[RunningStack]:
    """The running stack, with this test process's settings pointed at the same database/server."""
    await use_settings(
        DATABASE_URL=running_stack.database_url,
        PREFECT_API_URL=running_stack.stack.prefect_api_url,
        PIPELINE_DATA_DIR=str(running_stack.data_dir),
    )
    yield running_stack


@pytest.fixture
async def api(stack: RunningStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.stack.api_url, timeout=30) as http:
        yield http


@pytest.fixture
async def prefect(stack: RunningStack) -> AsyncIterator[PrefectClient]:
    async with PrefectClient(api=stack.stack.prefect_api_url) as client:
        yield client
