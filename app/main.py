"""create_app(): the FastAPI application with its routers, error handlers and lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from app import observability, serving
from app.api import health, logs, pipelines, results, schedules, uploads
from app.api.errors import install_error_handlers
from app.api.middleware.head import HeadAsGet
from app.api.middleware.hosts import AllowedHosts
from app.api.middleware.limits import BodySizeLimit
from app.api.middleware.query_once import QueryOnce
from app.config import get_settings
from app.db import get_engine
from app.pipeline.prefect_budget import PrefectBudget
from app.pipeline.reconcile.watchdog import Watchdog
from app.pipeline.tls import share_tls_contexts
from app.web import docs
from app.web import install as install_dashboard


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    serving.log_start()
    share_tls_contexts()  # each trigger creates a Prefect client
    watchdog = Watchdog(timedelta(seconds=settings.watchdog_interval_seconds))
    if settings.watchdog_enabled:
        watchdog.start()
    try:
        yield
    finally:
        await watchdog.stop()
        await get_engine().dispose()


def create_app() -> FastAPI:
    observability.setup(process="api")  # before the app: ddtrace's FastAPI integration wraps it
    app = FastAPI(
        title="Data Pipeline Service",
        description="Create and trigger five-stage data pipelines run by Prefect 3.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's /docs loads Swagger UI from a CDN; app/web/docs.py serves it
        redoc_url=None,  # ReDoc's bundle loads its logo from the internet whatever it is told
    )
    app.include_router(health.router)
    app.include_router(uploads.router)  # before pipelines: it takes the multipart POSTs
    app.include_router(pipelines.router)
    app.include_router(results.router)
    app.include_router(logs.router)
    app.include_router(schedules.router)
    install_dashboard(app)  # the HTML dashboard at / and its /static files
    docs.install(app)  # /docs, with Swagger UI's script and stylesheet from /static
    install_error_handlers(app)
    app.add_middleware(QueryOnce)  # a query parameter not taken, or given twice: a 422
    app.add_middleware(BodySizeLimit)
    app.add_middleware(AllowedHosts)  # before the body is read; inside HeadAsGet: no body
    app.add_middleware(HeadAsGet)
    app.add_middleware(PrefectBudget)  # each request's time on Prefect, retries and all, bounded
    return app


app = create_app()
