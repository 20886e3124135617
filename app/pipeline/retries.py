"""Retries: which failures are worth another attempt of a task or of the flow (bad input is not),
and what a run says while Prefect waits to run its flow again (PIPELINE_FLOW_RETRIES)."""

from typing import Any

from prefect import Task, get_client, get_run_logger
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import FlowRunContext

from app.pipeline import work as stage_work
from app.pipeline.input_files import inputs
from app.pipeline.transient import DatabaseUnreachableError


def retryable(exc: BaseException) -> bool:
    """Bad input fails the same way on every attempt: only other errors are worth a retry. Nor
    is a database that gave no answer for PIPELINE_DATABASE_RETRY_SECONDS: each attempt would
    wait as long again (a run's stages and its failure path took five times the setting)."""
    return not isinstance(
        exc, inputs.InputError | stage_work.RecordsRejectedError | DatabaseUnreachableError
    )


def retry_condition(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's side of `retryable`: the failed attempt's state carries the exception."""
    return not isinstance(state.data, BaseException) or retryable(state.data)


def flow_retry() -> str | None:
    """When Prefect will run this flow again after it fails (PIPELINE_FLOW_RETRIES), what the
    run says meanwhile; None on the last attempt."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None
    policy, attempt = context.flow_run.empirical_policy, context.flow_run.run_count
    if policy.retries is None or attempt > policy.retries:
        return None
    return (
        f"attempt {attempt} of {policy.retries + 1} failed; "
        f"Prefect runs the flow again in {policy.retry_delay or 0:g} s"
    )


async def after_failure(exc: BaseException) -> str | None:
    """`flow_retry` for an attempt that failed with `exc`. Bad input fails the same way on every
    attempt: Prefect is told to stop retrying the flow (its run's retry policy, which its server
    reads when the attempt fails, is lowered to the attempts made), and the run fails now."""
    retrying = flow_retry()
    context = FlowRunContext.get()
    if retrying is None or retryable(exc) or context is None or context.flow_run is None:
        return retrying
    flow_run = context.flow_run
    policy = flow_run.empirical_policy.model_copy(update={"retries": flow_run.run_count - 1})
    try:
        async with get_client() as client:
            await client.update_flow_run(flow_run.id, empirical_policy=policy)
    except Exception:  # never in place of the run's own error: Prefect retries, and fails again
        get_run_logger().warning("could not stop Prefect retrying the flow run", exc_info=True)
        return retrying
    flow_run.empirical_policy = policy
    return None
