"""Routes of /api/pipelines/{id}/runs/{run_id}/…: a run's results, summary and rejects.

Files are streamed from the run's directory, never read into memory; CSV and JSON Lines are
converted once with Polars' streaming sinks and kept beside the Parquet file. Only files that
resolve inside the run's directory are ever served.
"""

import asyncio
import os
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from polars.datatypes import DataType, DataTypeClass
from pydantic import BaseModel
from starlette.background import BackgroundTask

from app import files_gone
from app.api.auth import ReadAccess
from app.api.deps import RunDep
from app.api.downloads import RunDownload, converted_as_sent, timestamps_as_text
from app.api.schemas import errors
from app.models import PipelineRun, Status
from app.pipeline.store import RunFiles, serving_dir

router = APIRouter(
    prefix="/api/pipelines/{pipeline_id}/runs/{run_id}",
    tags=["results"],
    dependencies=[ReadAccess],
    responses=errors(401, 403, 404, 422, 503),
)

Format = Literal["parquet", "csv", "jsonl"]
FormatQuery = Annotated[Format, Query(description="parquet (as stored), csv or jsonl")]
MEDIA_TYPES: dict[str, str] = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}


# what a download's 200 is, by `format` (and 206 for a Range); FileResponse declares none
DOWNLOADED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file, in the format asked for (206 with a Range: that part of it)",
        "content": {media.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                    for media in MEDIA_TYPES.values()},
    }
}  # fmt: skip


class CategorySummary(BaseModel):
    category: str
    records: int
    total_value: float
    avg_total_value: float
    high_value_records: int
    discounted_value: float


def _not_found(run: PipelineRun, what: str) -> HTTPException:
    name = f"run {run.id} of pipeline {run.pipeline_id}"
    if not run.status.is_final:
        detail = f"{name} has no {what} yet: it is {run.status.value}"
    elif RunFiles.for_run(run.id).root.exists():
        detail = f"{name} has no {what}: it {_ended(run)}" + (
            f" ({run.error})" if run.error else ""
        )
    elif files_gone.past_retention(run) or files_gone.wrote_files(
        run.status == Status.COMPLETED, run.stages
    ):
        detail = f"{name} {files_gone.no_files(run)}"
    else:  # it ended before its stages wrote anything
        detail = f"{name} has no {what}: it {_ended(run)} before writing any file" + (
            f" ({run.error})" if run.error else ""
        )
    return HTTPException(status.HTTP_404_NOT_FOUND, detail)


def _ended(run: PipelineRun) -> str:
    return "was cancelled" if run.status == Status.CANCELLED else run.status.value


def _inside_run(run: PipelineRun, path: Path) -> Path:
    """The file, if it resolves (symlinks followed) inside the run's directory; else a 404."""
    root = RunFiles.for_run(run.id).root.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"run {run.id} of pipeline {run.pipeline_id}: {path.name} is outside the run directory",
        )
    return resolved


def _available(run: PipelineRun, path: Path, what: str, *, needs_completed: bool) -> Path:
    if (needs_completed and run.status != Status.COMPLETED) or not run.status.is_final:
        raise _not_found(run, what)
    if not path.is_file() and not path.is_symlink():
        raise _not_found(run, what)
    return _inside_run(run, path)


# what each text format cannot write (a Parquet input's extra columns can be of any type)
_UNWRITABLE: dict[str, tuple[type[pl.DataType], ...]] = {
    # a Parquet MAP column is Polars' Map since 2.1: "cannot be written to CSV", a 500
    "csv": (pl.List, pl.Array, pl.Struct, pl.Map, pl.Binary, pl.Duration, pl.Object),
    "jsonl": (pl.Binary, pl.Object),
}


def _holds(dtype: DataType | DataTypeClass, kinds: tuple[type[DataType], ...]) -> bool:
    """Whether `dtype` is, or holds at any depth (a list of binaries), one of `kinds`: Polars
    panicked writing a List(Binary) to JSON, a 500 past every error handler."""
    if isinstance(dtype, kinds):
        return True
    if isinstance(dtype, pl.List | pl.Array):
        return _holds(dtype.inner, kinds)
    if isinstance(dtype, pl.Struct):
        return any(_holds(f.dtype, kinds) for f in dtype.fields)
    if isinstance(dtype, pl.Map):
        return _holds(dtype.key, kinds) or _holds(dtype.value, kinds)
    return False


def converted(source: Path, fmt: Format) -> Path:
    """`source` in `fmt`: itself for parquet, else a CSV/JSON Lines copy written once, streaming.

    A column the format cannot hold is a 422 naming it, before anything is written.
    """
    if fmt == "parquet":
        return source
    target = source.with_suffix(f".{fmt}")
    if _fresh(target, source):
        return target
    return _convert(source, target, fmt)


_converting: dict[Path, asyncio.Lock] = {}  # conversions under way, by the file they write


async def converted_once(source: Path, fmt: Format) -> Path:
    """`converted`, where requests for the same file wait for one conversion instead of each
    making their own; they wait on the event loop, holding none of its threads."""
    if fmt == "parquet":
        return converted(source, fmt)  # the file itself: nothing to wait for
    target = source.with_suffix(f".{fmt}")
    lock = _converting.setdefault(target, asyncio.Lock())
    try:
        async with lock:
            return await asyncio.to_thread(converted, source, fmt)
    finally:
        if not lock.locked():  # the last one out; a late arrival finds the file made
            _converting.pop(target, None)


def _fresh(target: Path, source: Path) -> bool:
    return target.is_file() and target.stat().st_mtime >= source.stat().st_mtime


def _convert(source: Path, target: Path, fmt: Format) -> Path:
    if converted_as_sent(source, target, fmt):  # a JSON Lines input's rejects, as sent
        return target
    frame = pl.scan_parquet(source)
    unwritable = [
        f"{name} ({dtype})"
        for name, dtype in frame.collect_schema().items()
        if _holds(dtype, _UNWRITABLE[fmt])
    ]
    if unwritable:
        problem = (
            f"{fmt} cannot hold the column(s) {', '.join(unwritable)}; "
            f"download format=parquet{' or format=jsonl' if fmt == 'csv' else ''}"
        )
        raise RequestValidationError(
            [{"loc": ("query", "format"), "msg": problem, "type": "unwritable_column"}]
        )
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    frame = timestamps_as_text(frame)
    try:
        if fmt == "csv":
            frame.sink_csv(staging, engine="streaming")
        else:
            frame.sink_ndjson(staging, engine="streaming")
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def _gone(run: PipelineRun) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"run {run.id} of pipeline {run.pipeline_id}: its files were removed while being read "
        "(the pipeline was deleted, or retention removed them)",
    )


def _pinned(target: Path) -> Path:
    """A second name for `target` outside its run's directory (a hard link, no copy): a DELETE
    or retention removing the directory mid-download leaves the file being served whole. The
    response removes the link once sent."""
    serving = serving_dir()
    serving.mkdir(parents=True, exist_ok=True)
    link = serving / f"{uuid.uuid4().hex}{target.suffix}"
    try:
        os.link(target, link)
    except FileNotFoundError:
        raise
    except OSError:  # another file system (a data dir of symlinks): served by its own name
        return target
    return link


def _filename(run: PipelineRun, label: str, extension: str) -> str:
    """What a download of the run's `label` file is saved as: the pipeline and run in its name."""
    return f"pipeline-{run.pipeline_id}-run-{run.id}-{label}.{extension}"


async def _download(run: PipelineRun, path: Path, fmt: Format, label: str) -> FileResponse:
    try:
        target = _inside_run(run, await converted_once(path, fmt))
        served = await asyncio.to_thread(_pinned, target)
    except (FileNotFoundError, pl.exceptions.ComputeError):
        if await asyncio.to_thread(path.exists):
            raise
        raise _gone(run) from None
    return RunDownload(
        served,
        shown=target,
        media_type=MEDIA_TYPES[fmt],
        filename=_filename(run, label, fmt),
        background=BackgroundTask(served.unlink, missing_ok=True) if served != target else None,
    )


@router.head("/output", include_in_schema=False)  # download tools ask first; no 2nd operation id
@router.get(
    "/output", response_class=FileResponse, responses={**DOWNLOADED, **errors(400, 416, 507)}
)
async def download_output(run: RunDep, format: FormatQuery = "parquet") -> FileResponse:
    """The run's results file as Parquet, CSV or JSON Lines (404 until the run completed)."""
    files = RunFiles.for_run(run.id)
    source = _available(run, files.results, "output", needs_completed=True)
    return await _download(run, source, format, "results")


@router.head("/rejects", include_in_schema=False)  # download tools ask first; no 2nd operation id
@router.get(
    "/rejects", response_class=FileResponse, responses={**DOWNLOADED, **errors(400, 416, 507)}
)
async def download_rejects(run: RunDep, format: FormatQuery = "parquet") -> FileResponse:
    """The rows ingest rejected, each with its reject_reason (also for a failed run)."""
    files = RunFiles.for_run(run.id)
    source = _available(run, files.rejects, "rejects file", needs_completed=False)
    return await _download(run, source, format, "rejects")


@router.get("/summary")
async def read_summary(run: RunDep, response: Response) -> list[CategorySummary]:
    """The per-category summary of a completed run, as JSON (saved as a .json file)."""
    files = RunFiles.for_run(run.id)
    source = _available(run, files.summary, "summary", needs_completed=True)
    try:
        frame = await asyncio.to_thread(pl.read_parquet, source)
    except (FileNotFoundError, pl.exceptions.ComputeError):
        if await asyncio.to_thread(source.exists):
            raise
        raise _gone(run) from None
    filename = _filename(run, "summary", "json")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return [CategorySummary.model_validate(row) for row in frame.to_dicts()]
