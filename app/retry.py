"""Retrying a pipeline: one new run per failed or cancelled run however many retries race, and
with an Idempotency-Key, the first request's run for each repeat of it."""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import idempotency
from app.db import lock_for_write
from app.models import Pipeline, PipelineRun, Status
from app.pipeline.status import UNFINISHED
from app.service import (
    ConflictError,
    get_latest_run,
    launch,
    pending_run,
    refuse_gone_input,
)

RETRYABLE = frozenset({Status.FAILED, Status.CANCELLED})


async def retry_run(
    *, session: AsyncSession, pipeline: Pipeline, idempotency_key: str | None = None
) -> PipelineRun:
    """A new run (new flow run) for a pipeline whose latest run failed or was cancelled; a retry
    racing another (a double click) gets that one's run while it is in flight. A key seen within
    the window returns the run of that key, however it ended; a key that triggered a run of the
    pipeline raises idempotency.KeyReusedError."""
    pipeline_id = pipeline.id
    key, seen = await idempotency.run_of(
        session, pipeline_id=pipeline_id, key=idempotency_key, verb="retry"
    )
    if seen:
        return seen
    refuse_gone_input(pipeline)
    latest = await _latest_run_locked(session, pipeline_id)
    if latest is not None and latest.status in RETRYABLE:
        # the request's key, or one per failed run: a key's unique index settles any race left
        return await _start(session, pipeline, key or _retry_of(pipeline_id, latest.id))
    await session.commit()  # the lock is not held while a racing retry's run is waited for
    if latest is not None and (raced := await _racing_retry(session, latest)):
        if key is None:  # a double click: the retry under way is this one's
            return raced
        # another key's run: answered with it, a repeat of this key would find no run of its own
        # (and once that run had failed, make another)
        raise ConflictError(
            f"pipeline {pipeline_id} is being retried by another request (run {raced.id}, "
            f"{raced.status.value}); that request's Idempotency-Key gets its run; retry again "
            "once it has ended"
        )
    state = f"is {latest.status.value}" if latest else "has never run"
    raise ConflictError(
        f"pipeline {pipeline_id} {state}; only a failed or cancelled pipeline can be "
        f"retried (use POST /api/pipelines/{pipeline_id}/trigger for a new run)"
    )


def _retry_of(pipeline_id: int, run_id: int) -> str:
    """The key of the one retry of a run sent without an Idempotency-Key: no client's key."""
    return idempotency.own_key(pipeline_id, f"retry of run {run_id}")


async def _latest_run_locked(session: AsyncSession, pipeline_id: int) -> PipelineRun | None:
    """The pipeline's latest run, read holding the pipeline's row until the session's next
    commit: retries of a pipeline, each with its own key or none, decide one at a time, and the
    later ones find the first one's run."""
    await session.commit()  # on SQLite the lock begins a transaction of its own
    await lock_for_write(session)
    locked = select(Pipeline.id).where(Pipeline.id == pipeline_id).with_for_update(key_share=True)
    if await session.scalar(locked) is None:  # a DELETE won the race
        await session.rollback()
        raise ConflictError(f"pipeline {pipeline_id} was deleted; no run was started")
    return await get_latest_run(session=session, pipeline_id=pipeline_id)


async def _start(session: AsyncSession, pipeline: Pipeline, key: str) -> PipelineRun:
    run = pending_run(pipeline, key)
    session.add(run)
    try:
        await session.commit()
    except IntegrityError:  # the key is held by a run made without the lock (a trigger's)
        await session.rollback()
        if winner := await idempotency.wait_for_run(key):
            return winner
        raise
    return await launch(session=session, run=run)


async def _racing_retry(session: AsyncSession, latest: PipelineRun) -> PipelineRun | None:
    """The latest run once it has its flow run, if it is a retry's still in flight: of the
    pipeline's newest failed or cancelled run, or made with a retry's Idempotency-Key."""
    key = latest.idempotency_key
    if key is None or latest.status not in UNFINISHED:
        return None
    if not key.startswith(idempotency.retry_key(latest.pipeline_id, "")):
        retried = await session.scalar(
            select(func.max(PipelineRun.id)).where(
                PipelineRun.pipeline_id == latest.pipeline_id, PipelineRun.status.in_(RETRYABLE)
            )
        )
        if retried is None or key != _retry_of(latest.pipeline_id, retried):
            return None
    return await idempotency.wait_for_run(key)
