"""`make doctor` and GET /ready against a real Prefect server, for what a review found them
passing or misreading: PREFECT_API_URL without /api (or this service's own API) read as a pool
that is missing, a pool whose concurrency limit is 0 as ready, a database migrated by newer code
as one to migrate, and a worker fix that was not the command `make up` runs."""

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from itertools import count
from pathlib import Path
from subprocess import PIPE, STDOUT

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from prefect import flow
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.objects import StateType
from prefect.states import Scheduled
from sqlalchemy import text

from app import db
from app.config import PROJECT_ROOT
from app.models import Status, utcnow
from app.pipeline.reconcile import watchdog
from app.readiness import Check, run_checks
from tests.conftest import Configure
from tests.support.prefect_server import own_prefect_server
from tests.support.rows import add_pipeline, add_run, read_run
from tests.support.served import serve_app

HEAD = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini"))).get_current_head()
_pools = count(1)


@pytest.fixture(scope="module")
def prefect_server(tmp_root: Path) -> Iterator[str]:
    """A Prefect server of its own (no worker, no deployment): its API's URL."""
    with own_prefect_server(tmp_root / "doctor-review") as url:
        yield url


@pytest.fixture
async def prefect(prefect_server: str) -> AsyncIterator[PrefectClient]:
    async with PrefectClient(api=prefect_server) as client:
        yield client


@pytest.fixture
async def pool(configure: Configure, prefect_server: str) -> str:
    """A pool name of this test's own (the pools stay on the module's server), configured."""
    name = f"review-{next(_pools)}"
    await configure(PREFECT_API_URL=prefect_server, WORK_POOL_NAME=name)
    return name


@pytest.fixture
async def own_api(database: str) -> AsyncIterator[str]:
    """This service's API over HTTP (uvicorn in this event loop): its base URL."""
    async with serve_app() as url:
        yield url


def prefect_cli(server: str) -> str:
    """The Prefect CLI on `server`, as a fix writes it."""
    return f"PREFECT_API_URL={server} .venv/bin/prefect"


# a shell's environment with nothing of this test run's: no PREFECT_API_URL, no venv on PATH
WITHOUT_VENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": os.environ.get("HOME", "/root"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


async def test_a_prefect_api_url_without_api_is_named_not_read_as_a_missing_pool(
    configure: Configure, prefect_server: str
) -> None:
    """The server's root answers 404 to everything: the check said `reachable`, then the pool
    and the deployment `missing`, and the fix (deploy.py) died on the same 404s."""
    root = prefect_server.removesuffix("/api")
    await configure(PREFECT_API_URL=root)
    checks = await run_checks()
    assert [check.name for check in checks] == ["database", "migrations", "data_dir", "prefect_api"]
    assert _by_name(checks)["prefect_api"] == Check(
        "prefect_api",
        False,
        f"{root} is not a Prefect server's API: GET {root}/health answered 404, not `true`",
        f"PREFECT_API_URL must be the Prefect server's API address, ending in /api (try "
        f"{root}/api), in every process: API, worker and this one",
    )


async def test_this_service_s_own_api_is_not_taken_for_prefect_s(
    configure: Configure, own_api: str
) -> None:
    await configure(PREFECT_API_URL=f"{own_api}/api")
    prefect = _by_name(await run_checks())["prefect_api"]
    assert (prefect.ok, prefect.detail, prefect.fix) == (
        False,
        f"{own_api}/api is not a Prefect server's API: GET {own_api}/api/health answered 404, "
        "not `true`",
        "PREFECT_API_URL must be the Prefect server's API address, ending in /api, in every "
        "process: API, worker and this one",
    )
    await configure(PREFECT_API_URL=own_api)  # its /health answers 200, but not Prefect's `true`
    assert _by_name(await run_checks())["prefect_api"].detail == (
        f"{own_api} is not a Prefect server's API: GET {own_api}/health answered "
        """'{"status":"ok"}', not `true`"""
    )


async def test_a_pool_whose_concurrency_limit_is_0_is_not_ready(
    pool: str, prefect: PrefectClient, prefect_server: str
) -> None:
    """Prefect starts no run of a pool limited to 0: every check passed, and runs waited."""
    await prefect.create_work_pool(WorkPoolCreate(name=pool, type="process", concurrency_limit=0))
    checks = _by_name(await run_checks())
    assert checks["work_pool"] == Check(
        "work_pool",
        False,
        f"pool '{pool}' starts no runs, concurrency limit 0",
        f"{prefect_cli(prefect_server)} work-pool clear-concurrency-limit {pool} (no limit), or "
        f"{prefect_cli(prefect_server)} work-pool set-concurrency-limit {pool} N (N runs at once)",
    )
    # the worker `make up` starts (the warm start), not Prefect's own
    assert checks["worker"] == Check(
        "worker",
        False,
        "0 worker(s) with a recent heartbeat: none",
        f"start a worker: PREFECT_API_URL={prefect_server} .venv/bin/python -m "
        f"app.pipeline.worker --pool {pool} --type process (as `make up` does)",
    )

    await prefect.update_work_pool(pool, WorkPoolUpdate(is_paused=True))
    work_pool = _by_name(await run_checks())["work_pool"]
    assert work_pool == Check(
        "work_pool",
        False,
        f"pool '{pool}' paused, concurrency limit 0",
        f"{prefect_cli(prefect_server)} work-pool resume {pool}; and {prefect_cli(prefect_server)} "
        f"work-pool clear-concurrency-limit {pool} (no limit), or {prefect_cli(prefect_server)} "
        f"work-pool set-concurrency-limit {pool} N (N runs at once)",
    )
    # each fix as printed, in a shell in the project's directory, of a PATH without the venv: it
    # said `prefect work-pool resume …`, not found there, and on the default server without
    # PREFECT_API_URL (a throwaway one of Prefect's own)
    resume, clear = (
        work_pool.fix.split("; and ")[0],
        work_pool.fix.split("; and ")[1].split(" (")[0],
    )
    for fix in (resume, clear):
        shell = await asyncio.create_subprocess_shell(
            fix, cwd=PROJECT_ROOT, env=WITHOUT_VENV, stdout=PIPE, stderr=STDOUT
        )
        output, _ = await shell.communicate()
        assert shell.returncode == 0, output.decode()
    assert _by_name(await run_checks())["work_pool"] == Check(
        "work_pool", True, f"pool '{pool}' ready"
    )
    await prefect.update_work_pool(pool, WorkPoolUpdate(is_paused=False, concurrency_limit=2))
    assert _by_name(await run_checks())["work_pool"] == Check(
        "work_pool", True, f"pool '{pool}' ready, concurrency limit 2"
    )


@flow(name="doctor-review")
def _flow() -> None:
    """Only a name for the flow runs made here: nothing runs it."""


async def test_the_watchdog_counts_a_pool_limited_to_0_as_taking_no_runs(
    pool: str, prefect: PrefectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker beats, but Prefect starts nothing: a pending run waited PIPELINE_QUEUED_TIMEOUT
    (1 h) instead of the no-worker timeout (2 min)."""
    await prefect.create_work_pool(WorkPoolCreate(name=pool, type="process", concurrency_limit=0))
    await prefect.send_worker_heartbeat(pool, "beating")
    flow_run = await prefect.create_flow_run(_flow, state=Scheduled())
    pipeline_id = await add_pipeline("waits")
    run_id = await add_run(
        pipeline_id,
        Status.PENDING,
        {},
        prefect_flow_run_id=str(flow_run.id),
        created_at=utcnow() - timedelta(minutes=5),
    )
    stranded = _by_name(await run_checks())["stranded_runs"]
    assert (stranded.ok, stranded.detail.split(": ")[0]) == (
        False,
        f"1 stranded of 1 unfinished run(s); run {run_id}",
    )
    # no worker has taken runs for longer than the no-worker timeout, as this process watched
    monkeypatch.setattr(watchdog, "_last_taking", time.monotonic() - 600)
    [verdict] = await watchdog.reconcile_once()
    reason = re.escape(watchdog.NO_WORKER_FIX.format(pool=pool))
    waited = re.fullmatch(
        rf"not started after (\d+) s in Prefect state Scheduled: {reason}", verdict.reason
    )
    assert (verdict.run_id, verdict.status, waited is not None) == (run_id, Status.FAILED, True)
    assert waited is not None and 300 <= int(waited.group(1)) < 330
    assert (await read_run(run_id)).status == Status.FAILED
    cancelled = await prefect.read_flow_run(flow_run.id)
    assert cancelled.state is not None and cancelled.state.type == StateType.CANCELLED


async def test_a_database_migrated_by_newer_code_is_not_sent_to_make_migrate(
    database: str,
) -> None:
    """`make migrate` fails there (Can't locate revision): the fix is the newer code."""
    async with db.get_engine().begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9a9a9a9a9a9a'"))
    try:
        checks = _by_name(await run_checks())
    finally:
        async with db.get_engine().begin() as conn:
            await conn.execute(text(f"UPDATE alembic_version SET version_num = '{HEAD}'"))
    assert checks["migrations"] == Check(
        "migrations",
        False,
        f"at revision 9a9a9a9a9a9a, which this code's migrations (latest {HEAD}) do not have: "
        "the database is newer than this code",
        "deploy the newer code that migrated it; or, to run this code, downgrade the database "
        f"with that newer code first (`alembic downgrade {HEAD}` in its checkout)",
    )
    assert _by_name(await run_checks())["migrations"] == Check(
        "migrations", True, f"at revision {HEAD}, latest is {HEAD}"
    )


async def test_ready_shows_the_data_dir_check_with_its_warning_field(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/ready")).json()
    data_dir = {check["name"]: check for check in body["checks"]}["data_dir"]
    assert (sorted(data_dir), data_dir["ok"], data_dir["warning"], data_dir["fix"]) == (
        ["detail", "fix", "name", "ok", "warning"],
        True,
        False,
        None,
    )
