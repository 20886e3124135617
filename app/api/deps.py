"""Dependencies shared by the routers, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import service
from app.db import get_session
from app.models import Pipeline, PipelineRun

SessionDep = Annotated[AsyncSession, Depends(get_session)]
PipelineId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The pipeline's id.")]


async def pipeline_or_404(session: AsyncSession, pipeline_id: int) -> Pipeline:
    pipeline = await service.get_pipeline(session=session, pipeline_id=pipeline_id)
    if pipeline is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"pipeline {pipeline_id} not found")
    return pipeline


async def _pipeline(session: SessionDep, pipeline_id: PipelineId) -> Pipeline:
    return await pipeline_or_404(session, pipeline_id)


PipelineDep = Annotated[Pipeline, Depends(_pipeline)]


RunId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The run's id.")]


async def _run(session: SessionDep, pipeline: PipelineDep, run_id: RunId) -> PipelineRun:
    # its stages with it: a 404 tells a run that wrote files from one that ended before
    run = await session.get(PipelineRun, run_id, options=[selectinload(PipelineRun.stages)])
    if run is None or run.pipeline_id != pipeline.id:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"run {run_id} not found in pipeline {pipeline.id}"
        )
    return run


RunDep = Annotated[PipelineRun, Depends(_run)]
