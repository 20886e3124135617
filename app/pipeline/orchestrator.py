"""The only module that talks to the Prefect API: trigger runs of the deployment, read them back."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterIdempotencyKey,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLIENT_MAX_RETRIES,
    PREFECT_CLIENT_RETRY_JITTER_FACTOR,
    PREFECT_SERVER_EPHEMERAL_ENABLED,
    temporary_settings,
)
from prefect.states import Cancelled, Cancelling

from app import observability
from app.config import get_settings
from app.pipeline.prefect_budget import BudgetSpentError, within_budget
from app.pipeline.status import run_id_from_tags, run_tag
from app.shown import shown_prefect_url

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
READ_LIMIT = 200  # the most flow runs Prefect returns for one read
_deployment_ids: dict[tuple[str, str], UUID] = {}


class PrefectUnavailableError(RuntimeError):
    """Prefect cannot take the run; the message says what to do about it."""


class PrefectAnsweredError(PrefectUnavailableError):
    """Prefect's server answered with an error status: up, but refusing or failing this request
    (a flow run it cannot move), which other requests may not be."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class PrefectRefusedError(PrefectAnsweredError):
    """Prefect's server answered a 4xx that no caller expected (401: credentials)."""


class PrefectTimedOutError(PrefectUnavailableError):
    """Prefect did not answer within the request's budget: what was sent to it may still be
    carried out once it answers again."""

    def withdrawn(self) -> "PrefectTimedOutError":
        """The same, for a trigger that removed what it had made."""
        return PrefectTimedOutError(
            f"{self} Nothing of this request was kept: a flow run Prefect makes from it once it "
            "answers again starts nothing and ends Cancelled; repeat the request once Prefect "
            "answers."
        )


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
        async with within_budget(), client:
            yield client
    # `from None`: their errors name the URL, user:password too, and spans and logs keep chains
    except BudgetSpentError as spent:
        raise PrefectTimedOutError(
            f"Prefect API at {shown_api_url()} did not answer within {spent.seconds:g} s "
            "(PIPELINE_PREFECT_REQUEST_SECONDS); check that its server is not stopped or "
            "overloaded, and check its log and its database."
        ) from None
    except PrefectHTTPStatusError as exc:
        code = exc.response.status_code
        if code >= 500:
            raise PrefectAnsweredError(
                code,
                f"Prefect API at {shown_api_url()} answered {code}; "
                "check the Prefect server's log and its database.",
            ) from None
        raise PrefectRefusedError(
            code,
            f"Prefect API at {shown_api_url()} refused this service's request ({code}); if the server "
            "requires authentication, set PREFECT_API_AUTH_STRING (or PREFECT_API_KEY) in every "
            "process as the server expects",
        ) from None
    except (httpx.TransportError, OSError) as exc:
        raise PrefectUnavailableError(
            f"Prefect API at {shown_api_url()} is unreachable ({type(exc).__name__}). "
            "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
        ) from None


def shown_api_url() -> str:
    """The Prefect API's URL as errors name it: never credentials it may carry."""
    return shown_prefect_url(get_settings().prefect_api_url)


def _is_not_found(exc: Exception) -> bool:
    return isinstance(exc, ObjectNotFound) or (
        isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code == 404
    )


async def read_deployment_id(client: PrefectClient, *, refresh: bool = False) -> UUID:
    settings = get_settings()
    key = (settings.prefect_api_url, settings.deployment_name)
    if refresh or key not in _deployment_ids:
        try:
            deployment = await client.read_deployment_by_name(settings.deployment_name)
        except ObjectNotFound:
            _deployment_ids.pop(key, None)
            raise PrefectUnavailableError(
                f"Deployment '{settings.deployment_name}' not found on {shown_api_url()}. "
                "Create it with: python app/pipeline/deploy.py"
            ) from None
        _deployment_ids[key] = deployment.id
    return _deployment_ids[key]


@observability.traced("pipeline.trigger", resource="Data Pipeline")
async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
    """Create a flow run of the deployment for one pipeline run (`key`: its flow_run_key); the
    tag ties it to the run row, the labels carry the trace on into the flow-run process."""
    async with prefect_client() as client:
        for refresh in (False, True):
            deployment_id = await read_deployment_id(client, refresh=refresh)
            try:
                flow_run = await client.create_flow_run_from_deployment(
                    deployment_id,
                    parameters={"pipeline_id": pipeline_id, "record_count": record_count},
                    tags=[f"pipeline:{pipeline_id}", run_tag(run_id)],
                    idempotency_key=key,
                    labels=observability.trace_labels(),
                )
            except (ObjectNotFound, PrefectHTTPStatusError) as exc:
                if not _is_not_found(exc):
                    raise
                continue  # the deployment was deleted or re-created: look its id up again
            _log.info("pipeline %d run %d: flow run %s created", pipeline_id, run_id, flow_run.id)
            return flow_run
    raise deployment_gone()


def deployment_gone() -> PrefectUnavailableError:
    """The deployment was there when its id was read, and gone (deleted) when it was used."""
    return PrefectUnavailableError(
        f"Deployment '{get_settings().deployment_name}' disappeared while in use. "
        "Re-create it with: python app/pipeline/deploy.py"
    )


def trigger_deadline() -> timedelta:
    """The longest a trigger can take: every attempt of Prefect's client timing out, with its
    back-off between retries (2, 4, 8 … s, plus jitter). A run still without a flow run after
    this was not triggered by a request that is merely slow."""
    retries = PREFECT_CLIENT_MAX_RETRIES.value()
    backoff = sum(2**attempt for attempt in range(1, retries + 1))
    backoff_s = backoff * (1 + PREFECT_CLIENT_RETRY_JITTER_FACTOR.value())
    return timedelta(seconds=(retries + 1) * get_settings().prefect_timeout_seconds + backoff_s)


def _chunks(items: list[_T]) -> list[list[_T]]:
    """`items` in lists Prefect answers whole: it refuses a read of more than 200 (422)."""
    return [items[i : i + READ_LIMIT] for i in range(0, len(items), READ_LIMIT)]


async def find_flow_runs(keys: dict[int, str]) -> dict[int, str]:
    """The flow runs Prefect holds for these runs (by run id, their flow_run_key): run id → flow
    run id. Found by their keys: another database's run of the same id has the same tag."""
    if not keys:
        return {}
    flow_runs: list[FlowRun] = []
    async with prefect_client() as client:
        for chunk in _chunks(list(keys.values())):
            flow_runs += await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    idempotency_key=FlowRunFilterIdempotencyKey(any_=chunk)
                ),
                limit=READ_LIMIT,
            )
    return {
        run_id: str(flow_run.id)
        for flow_run in flow_runs
        if (run_id := run_id_from_tags(flow_run.tags)) is not None
        and flow_run.idempotency_key == keys.get(run_id)
    }


async def cancel_flow_run(flow_run_id: str) -> StateType | None:
    """Cancel a flow run: Cancelled if it never started, else Cancelling (its worker stops it).
    The state it was in (None: no such flow run); a final run is left alone."""
    async with prefect_client() as client:
        try:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:  # deleted in Prefect: nothing there to stop
            return None
        state = flow_run.state
        if state is None or state.is_final():
            return state.type if state else None
        message = "cancelled through the API"
        new_state: State[Any] = (
            Cancelled(message=message) if state.is_scheduled() else Cancelling(message=message)
        )
        return await propose(client, flow_run_id, new_state) or state.type


async def propose(
    client: PrefectClient, flow_run_id: str, state: State[Any], *, current: State | None = None
) -> StateType | None:
    """Move a flow run to `state` through Prefect's rules: a run that ended meanwhile keeps its
    final state, whose type is returned (a cancel racing a completion). Another refusal (no crash
    from Cancelling) is overridden; None: set. The rules let a final run become Cancelled: for
    Cancelled it is read first, unless the caller just read it (`current`); one ending within the
    milliseconds between is still overwritten."""
    if state.type == StateType.CANCELLED:
        current = current or (await client.read_flow_run(UUID(flow_run_id))).state
        if current is not None and current.is_final():
            return current.type
    result = await client.set_flow_run_state(UUID(flow_run_id), state)
    if result.status == SetStateStatus.ACCEPT:
        return None
    current = (await client.read_flow_run(UUID(flow_run_id))).state
    if current is not None and current.is_final():
        return current.type
    await client.set_flow_run_state(UUID(flow_run_id), state, force=True)
    return None


async def read_flow_run_states(
    flow_run_ids: list[str], *, types: list[StateType] | None = None
) -> dict[str, State]:
    """The current Prefect state of each of these flow runs (missing ids are left out); with
    `types`, only of those in a state of these types."""
    if not flow_run_ids:
        return {}
    flow_runs: list[FlowRun] = []
    in_state = FlowRunFilterState(type=FlowRunFilterStateType(any_=types)) if types else None
    async with prefect_client() as client:
        for chunk in _chunks(flow_run_ids):
            flow_runs += await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[UUID(i) for i in chunk]), state=in_state
                ),
                limit=len(chunk),
            )
    return {str(run.id): run.state for run in flow_runs if run.state is not None}


def flow_run_url(flow_run_id: str) -> str:
    """Where a person sees this flow run, its task runs and logs in the Prefect UI."""
    return f"{get_settings().prefect_ui_base}/runs/flow-run/{flow_run_id}"
