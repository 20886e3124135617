"""The Prefect flow `Data Pipeline`: five tasks, each a thin wrapper that reads, calls, writes, reports."""

import asyncio
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State
from prefect.context import FlowRunContext, TaskRunContext
from prefect.runtime import flow_run
from prefect.states import Cancelled

from app import observability
from app.config import get_settings
from app.models import Status
from app.pipeline import disk, drills, retries, stage_stop, telemetry, transient
from app.pipeline import work as stage_work
from app.pipeline.claim import RunCancelledError, RunRef, claim_run
from app.pipeline.failures import failure_reason
from app.pipeline.input_files.input_dir import readable_source
from app.pipeline.schedules import SCHEDULE_STOPPED, schedule_stopped
from app.pipeline.status import (
    CANCELLED_IN_PREFECT,
    keep_beating,
    run_id_from_tags,
    update_pipeline_status,
)
from app.pipeline.stops import STOPPED_WITHOUT_CANCEL, stop_reason
from app.pipeline.store import RunFiles, input_file, remove_if_deleted
from app.pipeline.work import InputSource, StageOutput

_settings = get_settings()
observability.setup()  # at import, before the run: its logs are JSON from the first line


async def _run_stage(
    ref: RunRef, files: RunFiles, stage: str, work: stage_stop.Work[StageOutput]
) -> StageOutput:
    """One attempt of a stage, traced and measured (app/pipeline/telemetry.py)."""
    context = TaskRunContext.get()
    attempt = context.task_run.run_count if context else 1
    with telemetry.stage(
        stage, pipeline_id=ref.pipeline_id, run_id=ref.run_id, attempt=attempt
    ) as tracking:
        output = await _attempt_stage(ref, files, stage, work, attempt=attempt, context=context)
        tracking.records(output.records_out)
        return output


async def _attempt_stage(
    ref: RunRef,
    files: RunFiles,
    stage: str,
    work: stage_stop.Work[StageOutput],
    *,
    attempt: int,
    context: TaskRunContext | None,
) -> StageOutput:
    """Report running, do the work off the event loop (in a thread told to stop when the run
    is: app/pipeline/stage_stop.py), report completed or failed."""
    task_retries = (context.task.retries if context else 0) or 0
    logger = get_run_logger()
    await update_pipeline_status(
        ref.pipeline_id, stage, Status.RUNNING, run_id=ref.run_id, attempt=attempt
    )
    try:
        drills.inject_fault(stage, attempt)
        await drills.hold(stage)
        last = attempt > task_retries
        output = await stage_stop.run_stage(
            stage,
            lambda stop: disk.freeing_space(lambda: work(stop), files, stage, last_attempt=last),
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if attempt <= task_retries and retries.retryable(exc):
            logger.warning("stage %s attempt %d failed (%s); retrying", stage, attempt, error)
            await update_pipeline_status(
                ref.pipeline_id,
                stage,
                Status.RUNNING,
                f"attempt {attempt} failed: {error}; retrying",
                run_id=ref.run_id,
            )
        else:
            counts = exc.counts if isinstance(exc, stage_work.RecordsRejectedError) else None
            await update_pipeline_status(
                ref.pipeline_id,
                stage,
                Status.FAILED,
                error=error,
                run_id=ref.run_id,
                records_in=counts.records_in if counts else None,
                records_out=counts.records_out if counts else None,
                records_rejected=counts.records_rejected if counts else None,
                retrying=await retries.after_failure(exc),
            )
        raise
    await update_pipeline_status(
        ref.pipeline_id,
        stage,
        Status.COMPLETED,
        records_in=output.records_in,
        records_out=output.records_out,
        records_rejected=output.records_rejected,
        run_id=ref.run_id,
    )
    logger.info("stage %s completed: %d in, %d out", stage, output.records_in, output.records_out)
    return output


# Every task carries the same tags (PIPELINE_TASK_TAGS). Before a tagged task runs, Prefect asks
# the server for a slot of each tag's concurrency limit; a process remembers for 5 s that a set of
# tags has no limit, so one shared set costs one round trip per run, not one per task.
# Runs are found by their flow run's tag `pipeline-run:<id>`, not by these.
TASK_TAGS = _settings.task_tags


@task(
    name="generate_data",
    tags=TASK_TAGS,
    retries=2,
    retry_condition_fn=retries.retry_condition,
    retry_delay_seconds=1,
    cache_policy=NO_CACHE,
)
async def generate_data(ref: RunRef, files: RunFiles) -> StageOutput:
    """Generate the run's synthetic records as Parquet parts (deterministic for the seed), or
    convert the pipeline's input file to them."""
    return await _run_stage(
        ref,
        files,
        "generate",
        lambda stop: stage_work.generate(
            files,
            record_count=ref.record_count,
            seed=_settings.seed,
            batch_rows=_settings.batch_rows,
            source=_input_source(ref),
            stop=stop,
        ),
    )


def _input_source(ref: RunRef) -> InputSource | None:
    """The pipeline's input file, if it has one, where a run may read it (input_dir.py)."""
    if not (ref.input_path and ref.input_format):
        return None
    path = readable_source(input_file(ref.input_path), _settings.input_dir)
    return InputSource(path, ref.input_format)


@task(
    name="ingest_data",
    tags=TASK_TAGS,
    retries=2,
    retry_condition_fn=retries.retry_condition,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
)
async def ingest_data(ref: RunRef, files: RunFiles) -> StageOutput:
    """Validate the input: good rows go on, bad rows go to the rejects file with a reason."""
    return await _run_stage(ref, files, "ingest", lambda _: stage_work.ingest(files))


@task(name="process_data", tags=TASK_TAGS, cache_policy=NO_CACHE)
async def process_data(ref: RunRef, files: RunFiles) -> StageOutput:
    """Compute each record's total value."""
    return await _run_stage(ref, files, "process", lambda _: stage_work.process(files))


@task(name="transform_data", tags=TASK_TAGS, cache_policy=NO_CACHE)
async def transform_data(ref: RunRef, files: RunFiles) -> StageOutput:
    """Flag high-value records, assign tiers, category averages and discounts."""
    return await _run_stage(
        ref,
        files,
        "transform",
        lambda _: stage_work.transform(
            files,
            dask_partitions=_settings.dask_partitions,
            dask_address=_settings.dask_address,
        ),
    )


@task(
    name="export_results",
    tags=TASK_TAGS,
    retries=2,
    retry_condition_fn=retries.retry_condition,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
)
async def export_results(ref: RunRef, files: RunFiles) -> StageOutput:
    """Publish the results file and write the per-category summary."""
    return await _run_stage(ref, files, "export", lambda _: stage_work.export(files))


@flow(
    name="Data Pipeline",
    log_prints=True,
    retries=_settings.flow_retries,
    retry_delay_seconds=_settings.flow_retry_delay_seconds,
)
async def run_data_pipeline_flow(
    pipeline_id: int, record_count: int = 1000
) -> dict[str, Any] | State:
    """Run the five stages for one run of `pipeline_id`, writing their status as they go."""
    # its writes wait out a database restart (app/pipeline/transient.py)
    transient.patient.set(True)
    context = FlowRunContext.get()
    if context and context.flow_run and await schedule_stopped(context.flow_run, pipeline_id):
        # nothing was started: no pipeline run, and Cancelled (not Failed) in Prefect
        return Cancelled(message=SCHEDULE_STOPPED)
    with telemetry.flow_run(
        flow_name=flow_run.flow_name,
        pipeline_id=pipeline_id,
        flow_run_id=str(flow_run.id),
        labels=context.flow_run.labels if context and context.flow_run else {},
    ) as tracking:
        try:
            made = context.flow_run if context else None
            return await _run_pipeline(pipeline_id, record_count, tracking, made)
        except RunCancelledError as exc:  # a cancel won the race with the trigger, or it ended
            tracking.cancelled, tracking.uncounted = True, True  # counted as it was ended
            return Cancelled(message=str(exc))
        except Exception as exc:  # anywhere in the attempt, stages or not: run it again?
            tracking.retrying = await retries.after_failure(exc) is not None
            raise


async def _run_pipeline(
    pipeline_id: int, record_count: int, tracking: telemetry.RunTracking, made: FlowRun | None
) -> dict[str, Any]:
    run_id = run_id_from_tags(flow_run.tags)
    tracking.claimed = run_id is not None  # its row counts it, even if the claim below fails
    ref = await claim_run(
        pipeline_id=pipeline_id,
        flow_run_id=str(flow_run.id),
        run_id=run_id,
        record_count=record_count,
        key=made.idempotency_key if made else None,  # another database's run N has another
        scheduled=bool(made and made.auto_scheduled),
    )
    tracking.run(ref.run_id)
    files = RunFiles.for_run(ref.run_id)
    print(f"pipeline {pipeline_id} run {ref.run_id}: {ref.record_count} records in {files.root}")
    threads, log = stage_stop.start_run(), get_run_logger()
    beating = asyncio.create_task(
        keep_beating(run_id=ref.run_id, every=_settings.heartbeat_seconds, log=log)
    )
    try:
        await generate_data(ref, files)
        await ingest_data(ref, files)
        await process_data(ref, files)
        await transform_data(ref, files)
        exported = await export_results(ref, files)
    except BaseException as exc:
        stopped = stop_reason(exc)
        cancelled = stopped == CANCELLED_IN_PREFECT
        tracking.stopped = stopped == STOPPED_WITHOUT_CANCEL
        retrying = None if stopped else await retries.after_failure(exc)
        error = stopped or failure_reason(exc, pipeline_id)
        await remove_if_deleted(files, ref.run_id)  # cancelled, deleted while a stage started
        await update_pipeline_status(
            pipeline_id,
            None,
            Status.CANCELLED if cancelled else Status.PENDING if retrying else Status.FAILED,
            # the API's own "cancelled through the API" wins when it is written first
            error=error,
            run_id=ref.run_id,
            retrying=retrying,
        )
        if stopped:  # its stage told to stop: once it has, a cancelled run keeps its rejects
            await stage_stop.after_stop(threads, files, ref.run_id, cancelled=cancelled, log=log)
        raise
    finally:
        beating.cancel()
    await update_pipeline_status(
        pipeline_id,
        None,
        Status.COMPLETED,
        run_id=ref.run_id,
        records_out=exported.records_out,
        input_file=str(files.raw),
        output_file=str(files.results),
    )
    print(f"pipeline {pipeline_id} run {ref.run_id}: completed, {exported.records_out} records")
    return {"run_id": ref.run_id, "records": exported.records_out, "output": str(files.results)}
