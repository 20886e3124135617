"""create_app(): the FastAPI application with its routers, error handlers and lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import health, pipelines
from app.api.errors import install_error_handlers
from app.db import get_engine


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await get_engine().dispose()


def create_app() -> FastAPI:
    app = FastAPI(
        title="Data Pipeline Service",
        description="Create and trigger five-stage data pipelines run by Prefect 3.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(pipelines.router)
    install_error_handlers(app)
    return app


app = create_app()
