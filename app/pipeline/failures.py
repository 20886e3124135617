"""What a run's row says when it failed on Prefect's side rather than on its data: a sentence
with the fix, the exception itself kept in parentheses. Prefect's own text
(`ConcurrencySlotAcquisitionError: Unable to acquire concurrency slots on ['tag:data-pipeline']:
503 Service Unavailable`) names neither what failed for the run nor what to do."""

import httpx
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError


def failure_reason(exc: BaseException, pipeline_id: int) -> str:
    """The error a failed run's row shows for `exc`."""
    raw = f"{type(exc).__name__}: {exc}"
    retry = f"retry the run (POST /api/pipelines/{pipeline_id}/retry)"
    if isinstance(exc, ConcurrencySlotAcquisitionError):
        return (
            "Prefect could not give a stage a slot of its tags' concurrency limits (PIPELINE_TASK_"
            f"TAGS): the Prefect server was failing or overloaded ({raw}); {retry}"
        )
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500:
        return f"the Prefect server failed a request of the run ({raw}); {retry}"
    if isinstance(exc, httpx.TransportError):
        return (
            f"the run could not reach the Prefect server ({raw}); check that it is up and that "
            f"PREFECT_API_URL names it, then {retry}"
        )
    return raw
