"""The dashboard's pages: the pipelines list with the create form, and a pipeline's live page.

Routes stay thin: they read through app.service, as the JSON API does, and render templates.
Everything the pages change (create, trigger, cancel, retry) goes through the JSON API from the
browser, so its validation, API keys and idempotency apply unchanged.
"""

import math
import re
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates

from app import display, service
from app.api import auth
from app.api.deps import SessionDep
from app.api.middleware.root_path import root_path
from app.api.schemas import PipelineOut, PipelineStatus
from app.config import get_settings
from app.web import address, view

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_SIZE = 20
MAX_PAGE = 1_000_000
STATUSES: dict[str, PipelineStatus] = {status: status for status in get_args(PipelineStatus)}
ACTIVE = ("pending", "running")
HEADERS = {
    # every script and stylesheet is served from /static: nothing else may load
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.trim_blocks = templates.env.lstrip_blocks = True
templates.env.filters.update(duration=display.duration, count=view.count, when=view.when)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


async def _reads_open(request: Request) -> bool:
    """The API's own read rule (API_KEYS_FOR_READS), answered instead of raised."""
    try:
        await auth.require_read_key(request)
    except HTTPException:
        return False
    return True


ReadsOpen = Annotated[bool, Depends(_reads_open)]


def _render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    settings = get_settings()
    return templates.TemplateResponse(
        request,
        template,
        {
            "keys_configured": bool(settings.api_keys),
            "reads_need_key": bool(settings.api_keys) and settings.api_keys_for_reads,
            "key_saved": bool(request.cookies.get(auth.API_KEY_COOKIE)),
            "root": root_path(request.scope),  # every link: the prefix a proxy serves it at
            **context,
        },
        status_code=status_code,
        headers=HEADERS,
    )


def _key_required(request: Request) -> HTMLResponse:
    """401, saying whether a saved key was refused (else the reader loops: saved, reloaded,
    asked again, with no hint that the key is wrong)."""
    refused = bool(request.cookies.get(auth.API_KEY_COOKIE))
    return _render(request, "key_required.html", {"refused": refused}, status_code=401)


def _fragment_key_required(request: Request) -> PlainTextResponse:
    """A polled fragment's 401: text the page shows as it is."""
    text = (
        "the API key saved for this session was refused: enter a valid one under 'API key'"
        if request.cookies.get(auth.API_KEY_COOKIE)
        else "reading needs an API key: enter it under 'API key'"
    )
    return PlainTextResponse(text, status_code=401, headers=HEADERS)


async def _pipeline(session: SessionDep, pipeline_id: str) -> PipelineOut | None:
    """The pipeline as the JSON API shows it, or None for an unknown or malformed id."""
    if not re.fullmatch(r"[0-9]{1,10}", pipeline_id) or not 1 <= int(pipeline_id) < 2**31:
        return None
    pipeline = await service.get_pipeline(session=session, pipeline_id=int(pipeline_id))
    if pipeline is None:
        return None
    run = await service.get_latest_run(session=session, pipeline_id=pipeline.id)
    return await service.pipeline_view(session=session, pipeline=pipeline, run=run)


def _progress(pipeline: PipelineOut) -> dict[str, Any]:
    run = pipeline.latest_run
    return {
        "pipeline": pipeline,
        "run": run,
        "stages": view.stage_rows(run) if run else [],
        "downloads": view.downloads(pipeline),
        "files_removed": view.files_removed(pipeline),
        "progress_line": view.progress_line(pipeline),
    }


@router.get("/")
async def pipelines_page(
    request: Request, session: SessionDep, reads_open: ReadsOpen
) -> HTMLResponse:
    """Pipelines, newest first, filtered by status and paged; the create-and-run form. An
    unknown status or page number, or one given twice, shows every pipeline, or the first page,
    saying so."""
    if not reads_open:
        return _key_required(request)
    status = address.asked(request.query_params, "status", "")
    page = address.asked(request.query_params, "page", "1")
    wanted = STATUSES.get(status.value)
    unknown = bool(status.value) and wanted is None
    number = _page_number(page.value)
    return _render(
        request,
        "pipelines.html",
        {
            **await _pipeline_list(session, wanted, number or 1),
            "unknown_status": address.shown(status.value) if unknown else None,
            "no_such_page": address.shown(page.value) if number is None else None,
            "repeated_status": status.repeated,
            "repeated_page": page.repeated,
            "statuses": list(STATUSES),
            "max_record_count": get_settings().max_record_count,
        },
    )


@router.get("/pipelines-list", response_model=None)
async def pipeline_list_fragment(
    request: Request, session: SessionDep, reads_open: ReadsOpen
) -> HTMLResponse | PlainTextResponse:
    """The list region of the pipelines page alone: what the page polls (errors as text); a
    parameter given twice is read as the page reads it."""
    if not reads_open:
        return _fragment_key_required(request)
    status = address.asked(request.query_params, "status", "").value
    page = address.asked(request.query_params, "page", "1").value
    context = await _pipeline_list(session, STATUSES.get(status), _page_number(page) or 1)
    return _render(request, "_pipeline_list.html", context)


def _page_number(text: str) -> int | None:
    """A page number as a person may type it into the address; None for one that numbers no
    page (0, -3, "two", past MAX_PAGE): the page then shows the first, saying so. Left empty,
    it is the first."""
    text = text.strip()
    if not text:
        return 1
    digits = text.isascii() and text.isdecimal() and len(text) <= len(str(MAX_PAGE))
    return int(text) if digits and 1 <= int(text) <= MAX_PAGE else None


async def _pipeline_list(
    session: SessionDep, status: PipelineStatus | None, page: int
) -> dict[str, Any]:
    rows, total = await service.list_pipelines(
        session=session, status=status, page=page, page_size=PAGE_SIZE
    )
    pipelines = rows
    return {
        "pipelines": pipelines,
        "total": total,
        "page": page,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
        "status": status,
        "query_string": urlencode({"page": page, **({"status": status} if status else {})}),
        # pending or running on this page: the page then polls faster
        "active": sum(item.status in ACTIVE for item in pipelines),
    }


@router.get("/pipelines/{pipeline_id}")
async def pipeline_page(
    request: Request, session: SessionDep, reads_open: ReadsOpen, pipeline_id: str
) -> HTMLResponse:
    """A pipeline's latest run, live: stages, logs, actions and downloads."""
    if not reads_open:
        return _key_required(request)
    pipeline = await _pipeline(session, pipeline_id)
    if pipeline is None:
        shown = address.shown(pipeline_id)
        return _render(request, "not_found.html", {"pipeline_id": shown}, status_code=404)
    return _render(request, "pipeline.html", _progress(pipeline))


@router.get("/pipelines/{pipeline_id}/progress", response_model=None)
async def progress_fragment(
    request: Request, session: SessionDep, reads_open: ReadsOpen, pipeline_id: str
) -> HTMLResponse | PlainTextResponse:
    """The progress region of the pipeline page alone: what the page polls (errors as text)."""
    if not reads_open:
        return _fragment_key_required(request)
    pipeline = await _pipeline(session, pipeline_id)
    if pipeline is None:
        shown = address.shown(pipeline_id)
        return PlainTextResponse(f"pipeline {shown} not found", 404, headers=HEADERS)
    return _render(request, "_progress.html", _progress(pipeline))
