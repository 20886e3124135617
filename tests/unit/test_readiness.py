"""Readiness: a deployment that sends its runs to another pool than the one watched is not ready."""

from app.pipeline.orchestrator import PoolHealth
from app.readiness import Check, _deployment_check


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
    assert _deployment_check(_health("default"), name, "default") == Check(
        "deployment", True, f"'{name}' exists, in pool 'default'", None
    )
    assert _deployment_check(_health("default"), name, "k8s") == Check(
        "deployment",
        False,
        f"'{name}' sends its runs to pool 'default', not 'k8s' (WORK_POOL_NAME), whose workers "
        "this service watches",
        "run python app/pipeline/deploy.py to move it to this pool, or set "
        "WORK_POOL_NAME=default in every process",
    )
    assert _deployment_check(_health(None, exists=False), name, "default") == Check(
        "deployment", False, f"'{name}' missing", "run python app/pipeline/deploy.py"
    )
