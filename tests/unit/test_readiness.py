"""Readiness: a deployment that sends its runs to another pool than the one watched is not ready."""

import os
import socket
from dataclasses import replace

import pytest

from app.pipeline.pool import PoolHealth
from app.readiness import Check, storage
from app.readiness.orchestration import deployment_check
from tests.conftest import use_settings

URL = "http://127.0.0.1:9/api"  # the tests' PREFECT_API_URL (tests/conftest.py)


def _health(deployment_pool: str | None, exists: bool = True) -> PoolHealth:
    return PoolHealth(
        pool_exists=True,
        pool_paused=False,
        pool_concurrency_limit=None,
        live_workers=["w"],
        deployment_exists=exists,
        deployment_pool=deployment_pool,
    )


def test_the_deployment_must_send_its_runs_to_the_pool_the_service_watches() -> None:
    name = "Data Pipeline/data-pipeline-deployment"
    assert deployment_check(_health("default"), name, "default") == Check(
        "deployment", True, f"'{name}' exists, in pool 'default'", None
    )
    assert deployment_check(_health("default"), name, "k8s") == Check(
        "deployment",
        False,
        f"'{name}' sends its runs to pool 'default', not 'k8s' (WORK_POOL_NAME), whose workers "
        "this service watches",
        f"run PREFECT_API_URL={URL} .venv/bin/python app/pipeline/deploy.py to move it to this "
        "pool, or set "
        "WORK_POOL_NAME=default in every process",
    )
    assert deployment_check(_health(None, exists=False), name, "default") == Check(
        "deployment",
        False,
        f"'{name}' missing",
        f"run PREFECT_API_URL={URL} .venv/bin/python app/pipeline/deploy.py",
    )


async def test_a_database_that_never_answers_is_a_failed_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that accepts connections and never answers (a hung host, a wrong port behind a
    proxy): the check fails with its reason after DATABASE_CHECK_SECONDS; it once raised
    IndexError on the timeout's empty message, and /ready answered 500."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        monkeypatch.setattr(storage, "DATABASE_CHECK_SECONDS", 0.5)
        before = os.environ["DATABASE_URL"]
        await use_settings(DATABASE_URL=f"postgresql+asyncpg://app@127.0.0.1:{port}/pipelines")
        try:
            checks = await storage.database_checks()
        finally:
            await use_settings(DATABASE_URL=before)
    assert checks == [
        Check(
            "database",
            False,
            f"127.0.0.1:{port}/pipelines: no answer within 0.5 s",
            "check DATABASE_URL and that the database server is running; then run `make migrate` "
            "with this DATABASE_URL set (alembic upgrade head)",
        )
    ]


def test_a_pool_takes_runs_only_when_a_run_could_start() -> None:
    """Its concurrency limit at 0, Prefect starts none: the watchdog counted the pool as taking
    runs, and pending runs waited the queued timeout (1 h), not the no-worker one (2 min)."""
    ready = _health("default")
    assert [
        replace(ready, **change).takes_runs
        for change in (
            {},
            {"pool_concurrency_limit": 2},
            {"pool_concurrency_limit": 0},
            {"pool_paused": True},
            {"pool_exists": False},
            {"live_workers": []},
        )
    ] == [True, True, False, False, False, False]
