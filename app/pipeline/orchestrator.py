"""The only module that talks to the Prefect API: trigger runs of the deployment, read them back."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, temporary_settings

from app.config import get_settings
from app.pipeline.status import run_tag

_deployment_ids: dict[tuple[str, str], UUID] = {}


class PrefectUnavailableError(RuntimeError):
    """Prefect cannot take the run; the message says what to do about it."""


@asynccontextmanager
async def prefect_client() -> AsyncIterator[PrefectClient]:
    """A client for the configured server, never an ephemeral one, failing fast when it is down."""
    settings = get_settings()
    updates: dict[Any, Any] = {
        PREFECT_API_URL: settings.prefect_api_url,
        PREFECT_SERVER_EPHEMERAL_ENABLED: False,
    }
    with temporary_settings(updates=updates):
        client = get_client(httpx_settings={"timeout": settings.prefect_timeout_seconds})
    try:
        async with client:
            yield client
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code < 500:
            raise
        raise PrefectUnavailableError(
            f"Prefect API at {settings.prefect_api_url} answered {exc.response.status_code}; "
            "check the Prefect server's log and its database."
        ) from exc
    except (httpx.TransportError, OSError) as exc:
        raise PrefectUnavailableError(
            f"Prefect API at {settings.prefect_api_url} is unreachable ({type(exc).__name__}). "
            "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
        ) from exc


def _is_not_found(exc: Exception) -> bool:
    return isinstance(exc, ObjectNotFound) or (
        isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code == 404
    )


async def _deployment_id(client: PrefectClient, *, refresh: bool = False) -> UUID:
    settings = get_settings()
    key = (settings.prefect_api_url, settings.deployment_name)
    if refresh or key not in _deployment_ids:
        try:
            deployment = await client.read_deployment_by_name(settings.deployment_name)
        except ObjectNotFound:
            _deployment_ids.pop(key, None)
            raise PrefectUnavailableError(
                f"Deployment '{settings.deployment_name}' not found on {settings.prefect_api_url}. "
                "Create it with: python app/pipeline/deploy.py"
            ) from None
        _deployment_ids[key] = deployment.id
    return _deployment_ids[key]


async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int) -> FlowRun:
    """Create a flow run of the deployment for one pipeline run; the tag ties it to the run row."""
    async with prefect_client() as client:
        for refresh in (False, True):
            deployment_id = await _deployment_id(client, refresh=refresh)
            try:
                return await client.create_flow_run_from_deployment(
                    deployment_id,
                    parameters={"pipeline_id": pipeline_id, "record_count": record_count},
                    tags=[f"pipeline:{pipeline_id}", run_tag(run_id)],
                    idempotency_key=run_tag(run_id),
                )
            except (ObjectNotFound, PrefectHTTPStatusError) as exc:
                if not _is_not_found(exc):
                    raise
                continue  # the deployment was deleted or re-created: look its id up again
    raise PrefectUnavailableError(
        f"Deployment '{get_settings().deployment_name}' disappeared while triggering. "
        "Re-create it with: python app/pipeline/deploy.py"
    )


def flow_run_url(flow_run_id: str) -> str:
    """Where a person sees this flow run, its task runs and logs in the Prefect UI."""
    return f"{get_settings().prefect_ui_base}/runs/flow-run/{flow_run_id}"
