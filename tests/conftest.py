"""Shared fixtures: every database test runs on SQLite and on a throwaway PostgreSQL cluster."""

import os
import shutil
import subprocess
import sys
import tempfile

# imported whole now: pytest's unraisable-exception hook imports it at its first call, and a
# garbage collection running finalizers during that import found it half made ("partially initialized
# module 'tracemalloc'"), failing the test that happened to be running
import tracemalloc  # noqa: F401
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="pipeline-tests-"))
(_TMP / "empty.env").touch()
# Datadog stays off unless a test turns it on against its own test agent.
for _name in [name for name in os.environ if name.startswith("DD_")]:
    del os.environ[_name]
# Before anything imports Prefect or the app: never an ephemeral Prefect server, and no real one
# unless a test starts it (port 9 is closed, so "Prefect unreachable" is real, not mocked).
os.environ.update(
    PREFECT_API_URL="http://127.0.0.1:9/api",
    PREFECT_SERVER_EPHEMERAL_ENABLED="false",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_HOME=str(_TMP / "prefect-home"),
    PIPELINE_DATA_DIR=str(_TMP / "data"),
    DATABASE_URL=f"sqlite+aiosqlite:///{_TMP / 'unused.db'}",
    # the names the tests' clients send (httpx's http://test, the browsers' *.test), as a
    # deployment behind a name lists its own (app/api/middleware/hosts.py)
    PIPELINE_ALLOWED_HOSTS="test,.test",
    # a developer's .env reaches no test, nor the stacks they start (a test that reads a .env
    # names its own)
    PIPELINE_ENV_FILE=str(_TMP / "empty.env"),
)

import httpx  # noqa: E402
from httpx import ASGITransport  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import config, db, read_cache  # noqa: E402
from app.config import PROJECT_ROOT  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.support.postgres import create_database, postgres_cluster  # noqa: E402

if TYPE_CHECKING:
    from playwright.async_api import Browser

TABLES = ("pipeline_stages", "pipeline_runs", "pipelines")


def migrate(database_url: str) -> None:
    """Apply the Alembic migrations, as the start command does."""
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session's files (databases, stacks' logs and run files) go when every test passed;
    after a failure they stay for a look, and the path is printed."""
    if exitstatus == 0:
        shutil.rmtree(_TMP, ignore_errors=True)
    else:
        print(f"\nthis test process's files (stack logs, databases): {_TMP}", file=sys.stderr)


# the package's Datadog stack and test agent (tests/observability/conftest.py), shared by modules
_PACKAGE_STACKS = ("observed_stack", "test_agent", "statsd")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`, --dist loadgroup) each test process takes whole groups:
    one backend's shared end-to-end stack with all its tests (started once), the Datadog
    package's stack with its tests, else one module (its module-scoped fixtures start once).
    The two stacks' groups, the longest, come first: one to each process, the rest fill in."""
    first: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        fixtures = getattr(item, "fixturenames", ())
        if callspec is not None and "running_stack" in callspec.params:
            group = f"stack-{callspec.params['running_stack']}"
            first.append(item)
        elif any(name in fixtures for name in _PACKAGE_STACKS):
            group = "observed-stack"
        else:
            group = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        chosen = {id(item) for item in first}
        items[:] = first + [item for item in items if id(item) not in chosen]


@pytest.fixture(autouse=True)
def watchdog_up_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's watchdog has watched for an hour, as in a service up a while: a test's
    silent run is judged at once (a younger watchdog waits the stale age first; tests of it set
    their own, tests/unit/test_outage_verdicts.py)."""
    from app.models import utcnow
    from app.pipeline.reconcile import watchdog

    monkeypatch.setattr(watchdog.database_reach, "watching_since", utcnow() - timedelta(hours=1))


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    """A PostgreSQL server: TEST_DATABASE_URL's, or a cluster started for this session."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url.rsplit("/", 1)[0]
        return
    with postgres_cluster() as url:
        yield url


_db_counter = iter(range(1_000_000))


def new_database_url(backend: str, request: pytest.FixtureRequest, tmp_root: Path) -> str:
    """A fresh, migrated database on `backend`."""
    name = f"pipelines_{next(_db_counter)}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_root / name}.db"
    else:
        url = create_database(request.getfixturevalue("pg_base_url"), name)
    migrate(url)
    return url


# one migrated database per backend and test process: pytest sets a parametrized session fixture
# up again each time the order of the tests switches backend (190 migrations in a `make test`)
_shared_databases: dict[str, str] = {}


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_root: Path) -> str:
    backend = request.param
    if backend not in _shared_databases:
        _shared_databases[backend] = new_database_url(backend, request, tmp_root)
    return _shared_databases[backend]


async def use_settings(**env: str) -> None:
    """Point the app at new settings: the env changes and the cached settings/engine are rebuilt."""
    await db.get_engine().dispose()
    read_cache.invalidate()
    os.environ.update(env)
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()


SetSetting = Callable[[str, str], None]


@pytest.fixture
def setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetSetting]:
    """Set a PIPELINE_* variable for this test; the settings are read again, and after it."""

    def set_setting(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        config.get_settings.cache_clear()

    yield set_setting
    monkeypatch.undo()
    config.get_settings.cache_clear()


Configure = Callable[..., Awaitable[None]]


@pytest.fixture
async def configure(database: str) -> AsyncIterator[Configure]:
    """`await configure(API_KEYS="alpha")`: change settings for one test (read again at once);
    the environment is restored afterwards."""
    saved = dict(os.environ)
    yield use_settings
    os.environ.clear()
    os.environ.update(saved)
    await use_settings()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[str]:
    """The migrated database of this backend, emptied before the test."""
    await use_settings(DATABASE_URL=database_url)
    async with db.get_engine().begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                await conn.execute(text(f"DELETE FROM {table}"))
            # the tables are AUTOINCREMENT: ids start at 1 again only with their counters reset
            await conn.execute(text("DELETE FROM sqlite_sequence"))
    yield database_url


@pytest.fixture
async def client(database: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process over ASGI, on the test's database."""
    async with httpx.AsyncClient(
        transport=ASGITransport(app=create_app()), base_url="http://test"
    ) as http:
        yield http


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator["Browser"]:
    """Debian's headless Chromium, for the dashboard's and the API docs' browser tests."""
    from tests.e2e.browser import chromium  # Playwright, for the tests that ask for it alone

    async with chromium() as launched:
        yield launched
