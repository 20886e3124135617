"""Deleting a pipeline: its schedule in Prefect first (no run of it is made after that), then its
rows in one commit, then its files. Prefect keeps the history of its flow runs."""

import asyncio
import logging
import shutil
from pathlib import Path

from prefect.client.schemas.objects import DeploymentSchedule
from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun
from app.pipeline import orchestrator, schedules
from app.pipeline.prefect_budget import budget_of_its_own
from app.pipeline.status import UNFINISHED
from app.pipeline.store import RunFiles, remove_run_directory, uploads_dir
from app.service import ConflictError, get_latest_run

logger = logging.getLogger(__name__)


def _in_flight(pipeline_id: int, run: PipelineRun) -> ConflictError:
    return ConflictError(
        f"run {run.id} of pipeline {pipeline_id} is {run.status.value}; cancel it first "
        f"(POST /api/pipelines/{pipeline_id}/cancel), then delete the pipeline"
    )


async def delete_pipeline(*, session: AsyncSession, pipeline: Pipeline) -> None:
    """Delete a pipeline whose runs have all ended, with its runs, stages, files and schedule.

    Raises ConflictError while a run is pending or running, and orchestrator.PrefectUnavailableError
    when its schedule cannot be removed (nothing is deleted). A delete that fails after the
    schedule was removed (a run that started meanwhile, the database) puts the schedule back.
    """
    # a rollback expires the object: what is needed of it, now
    pipeline_id, record_count, input_path = pipeline.id, pipeline.record_count, pipeline.input_path
    in_flight = await get_latest_run(session=session, pipeline_id=pipeline_id, unfinished=True)
    if in_flight is not None:  # before the schedule is touched
        raise _in_flight(pipeline_id, in_flight)
    removed = await schedules.delete_pipeline_schedule(pipeline_id)
    try:
        run_ids = await _delete_rows(session, pipeline_id)
    except BaseException as failed:  # nothing deleted (a run started meanwhile, the database):
        if removed is not None:  # the pipeline stays, and so does its schedule
            await _put_back(pipeline_id, record_count, removed, failed)
        raise
    if run_ids is not None:
        await asyncio.to_thread(_remove_files, run_ids, _own_upload(input_path))
    await _schedule_set_meanwhile(pipeline_id)


async def _put_back(
    pipeline_id: int, record_count: int, removed: DeploymentSchedule, failed: BaseException
) -> None:
    """Set the schedule removed before a delete that failed again, as it was."""
    try:
        with budget_of_its_own():
            await schedules.set_pipeline_schedule(
                pipeline_id=pipeline_id,
                record_count=record_count,
                schedule=removed.schedule,
                active=removed.active,
            )
    except orchestrator.PrefectUnavailableError as exc:  # PrefectRefusedError too
        logger.warning("pipeline %d: its schedule could not be put back: %s", pipeline_id, exc)
        if isinstance(failed, ConflictError):
            raise ConflictError(
                f"{failed}; its schedule was removed and could not be put back ({exc}): "
                f"set it again with PUT /api/pipelines/{pipeline_id}/schedule"
            ) from None


async def _schedule_set_meanwhile(pipeline_id: int) -> None:
    """Remove a schedule set while the rows were being deleted (a PUT …/schedule racing this
    delete). Its request checks again once it has set it (drop_schedule_if_removed): one of the
    two sees the other."""
    try:
        with budget_of_its_own():
            await schedules.delete_pipeline_schedule(pipeline_id)
    except orchestrator.PrefectUnavailableError as exc:  # PrefectRefusedError too
        logger.warning("pipeline %d: deleted; a schedule set meanwhile stays: %s", pipeline_id, exc)


async def drop_schedule_if_removed(pipeline_id: int) -> bool:
    """After setting a pipeline's schedule: if the pipeline was deleted meanwhile, remove the
    schedule again (no run of a deleted pipeline is made) and say so."""
    async with get_sessionmaker()() as session:  # not the request's: its snapshot may be older
        if await session.get(Pipeline, pipeline_id) is not None:
            return False
    with budget_of_its_own():
        await schedules.delete_pipeline_schedule(pipeline_id)
    return True


async def _delete_rows(session: AsyncSession, pipeline_id: int) -> list[int] | None:
    """Delete the pipeline's rows in one commit: the ids of its runs, whose files go next, or
    None when a request racing this one deleted them first."""
    run_ids = list(
        (
            await session.execute(
                select(PipelineRun.id).where(PipelineRun.pipeline_id == pipeline_id)
            )
        )
        .scalars()
        .all()
    )
    # The rows go only if no run started meanwhile (a trigger or a scheduled run racing this
    # delete). On PostgreSQL the pipeline's row is locked first: a run being inserted holds a
    # share lock on it, so the lock waits for that run's commit, and the check after it (a new
    # snapshot) sees it; a run inserted later waits for this delete and fails on the foreign key.
    # SQLite writes one transaction at a time. Runs and stages go with their pipeline (ON DELETE
    # CASCADE).
    await session.execute(select(Pipeline.id).where(Pipeline.id == pipeline_id).with_for_update())
    started = (
        await session.execute(select(PipelineRun).where(*_unfinished(pipeline_id)).limit(1))
    ).scalar_one_or_none()
    if started is not None:
        refused = _in_flight(pipeline_id, started)  # before the rollback expires the row
        await session.rollback()
        raise refused
    result = await session.execute(
        delete(Pipeline)
        .where(Pipeline.id == pipeline_id, ~exists().where(*_unfinished(pipeline_id)))
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        await session.rollback()
        started = await get_latest_run(session=session, pipeline_id=pipeline_id, unfinished=True)
        if started is not None:
            raise _in_flight(pipeline_id, started)
        return None  # deleted by a request racing this one: the outcome is the same
    await session.commit()
    return run_ids


def _unfinished(pipeline_id: int) -> tuple[ColumnElement[bool], ...]:
    return (PipelineRun.pipeline_id == pipeline_id, PipelineRun.status.in_(UNFINISHED))


def _own_upload(input_path: str | None) -> Path | None:
    """The directory of the pipeline's uploaded input (one per upload); a file it names under
    PIPELINE_INPUT_DIR is the user's own and stays."""
    if input_path is None:
        return None
    directory = Path(input_path).parent
    return directory if directory.parent.resolve() == uploads_dir().resolve() else None


def _remove_files(run_ids: list[int], upload: Path | None) -> None:
    """A run's flow-run process may still be writing (a cancel stops it seconds later): its
    directory is renamed away before it is deleted, and no later write makes it again; one its
    process made after this (a stage starting) that process removes as it stops
    (store.remove_if_deleted). Left behind if this fails (a process killed meanwhile): retention
    removes a directory of a run it does not know once it is older than PIPELINE_RETENTION_DAYS."""
    for run_id in run_ids:
        remove_run_directory(RunFiles.for_run(run_id).root)
    if upload:
        shutil.rmtree(upload, ignore_errors=True)
