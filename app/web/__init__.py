"""The dashboard: server-rendered pages over the same service functions as the JSON API."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.web import key
from app.web.pages import STATIC_DIR, router


def install(app: FastAPI) -> None:
    """Serve the dashboard at / and its CSS/JS (all local, no CDN) at /static; /dashboard/key
    keeps the reader's API key in the browser's cookie."""
    app.include_router(router)
    app.include_router(key.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
