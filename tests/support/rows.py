"""Pipelines and runs written straight to the database, with fixed times, for the page tests."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, Status, utcnow
from app.pipeline.status import new_stage_rows

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
FLOW_RUN_ID = "0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10"


async def add_pipeline(name: str, *, minutes: int = 0, record_count: int = 1000) -> int:
    async with get_sessionmaker()() as session:
        pipeline = Pipeline(
            name=name, record_count=record_count, created_at=T0 + timedelta(minutes=minutes)
        )
        session.add(pipeline)
        await session.commit()
        return pipeline.id


async def add_run(
    pipeline_id: int,
    status: Status,
    stages: dict[str, dict[str, Any]],
    **fields: Any,
) -> int:
    """A run whose named stages get the given columns; the others stay pending. A final run
    ended now unless `completed_at` says otherwise: the app never leaves a final run without it."""
    if status.is_final:
        fields.setdefault("completed_at", utcnow())
    async with get_sessionmaker()() as session:
        rows = new_stage_rows()
        for row in rows:
            for column, value in stages.get(row.name, {}).items():
                setattr(row, column, value)
        fields.setdefault("record_count", 1000)
        run = PipelineRun(pipeline_id=pipeline_id, status=status, stages=rows, **fields)
        session.add(run)
        await session.commit()
        return run.id


def done(seconds: float, records_in: int, records_out: int, rejected: int = 0) -> dict[str, Any]:
    return {
        "status": Status.COMPLETED,
        "started_at": T0,
        "completed_at": T0 + timedelta(seconds=seconds),
        "duration_seconds": seconds,
        "records_in": records_in,
        "records_out": records_out,
        "records_rejected": rejected,
        "attempts": 1,
    }


async def count_rows(model: type) -> int:
    """How many rows the model's table holds."""
    async with get_sessionmaker()() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def read_run(run_id: int) -> PipelineRun:
    """The run as its row is now, with its stages."""
    async with get_sessionmaker()() as session:
        query = (
            select(PipelineRun)
            .where(PipelineRun.id == run_id)
            .options(selectinload(PipelineRun.stages))
        )
        return (await session.execute(query)).scalar_one()
