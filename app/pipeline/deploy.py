"""Create (idempotently) the process work pool `default` and the deployment of the Data Pipeline flow.

Run it as `python app/pipeline/deploy.py`; running it again changes nothing.
"""

import sys
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import httpx
from prefect import Flow, flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, temporary_settings

HERE = Path(__file__).resolve().parent
if str(HERE.parent.parent) not in sys.path:  # `python app/pipeline/deploy.py` from a checkout
    sys.path.insert(0, str(HERE.parent.parent))

from app.config import get_settings  # noqa: E402
from app.pipeline.pool import NotPrefectAPIError, require_prefect_api_sync  # noqa: E402
from app.shown import shown_prefect_url  # noqa: E402

DEPLOYMENT_NAME = "data-pipeline-deployment"


def ensure_work_pool(name: str) -> bool:
    """Create the process work pool `name` unless it exists; True when it was created."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def job_variables(*, warm_start: bool) -> dict[str, Any]:
    """The run's command: the warm launcher (it falls back to Prefect's engine without a zygote)."""
    if not warm_start:
        return {}
    return {"command": f"{sys.executable} -m app.pipeline.launcher"}


def deploy() -> UUID:
    """Register the flow from this directory as `data-pipeline-deployment` on the pool, on the
    configured server: without PREFECT_API_URL, Prefect would start a throwaway server of its own,
    register the deployment there and report success."""
    updates: dict[Any, Any] = {
        PREFECT_API_URL: get_settings().prefect_api_url,
        PREFECT_SERVER_EPHEMERAL_ENABLED: False,
    }
    with temporary_settings(updates=updates):
        return _deploy()


def _deploy() -> UUID:
    settings = get_settings()
    with get_client(sync_client=True) as client:  # its 404s would read as a pool not there
        require_prefect_api_sync(client)
    created = ensure_work_pool(settings.work_pool_name)
    print(f"work pool '{settings.work_pool_name}': {'created' if created else 'exists'}")
    source = cast(
        "Flow[..., Any]",
        flow.from_source(source=HERE, entrypoint="flows.py:run_data_pipeline_flow"),
    )
    deployment_id = cast(
        UUID,
        source.deploy(
            name=DEPLOYMENT_NAME,
            work_pool_name=settings.work_pool_name,
            description="Five-stage data pipeline: generate, ingest, process, transform, export.",
            tags=["data-pipeline"],
            concurrency_limit=settings.deployment_concurrency_limit,
            job_variables=job_variables(warm_start=settings.warm_start),
            print_next_steps=False,
        ),
    )
    # Updating a deployment makes Prefect delete its future scheduled runs (every pipeline's
    # schedule lives on it); have them made again now rather than on the scheduler's next loop.
    with get_client(sync_client=True) as client:
        client.request(
            "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={}
        )
    print(f"deployment 'Data Pipeline/{DEPLOYMENT_NAME}': {deployment_id}")
    return deployment_id


if __name__ == "__main__":
    try:
        deploy()
    except httpx.TransportError as exc:
        sys.exit(
            f"deploy: cannot reach the Prefect API at {shown_prefect_url(get_settings().prefect_api_url)} "
            f"({type(exc).__name__}); start the server (make up, or prefect server start) and "
            "set PREFECT_API_URL to its address"
        )
    except NotPrefectAPIError as exc:
        sys.exit(f"deploy: {exc}")
