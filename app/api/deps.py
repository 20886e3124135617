"""Dependencies shared by the routers, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy.ext.asyncio import AsyncSession

from app import service
from app.db import get_session
from app.models import Pipeline

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
