"""POST /api/pipelines as multipart/form-data: a pipeline whose input is an uploaded file.

The file is streamed to disk under the data directory as it arrives (never held in memory),
decompressed if it is gzip/bz2/xz, checked as a whole (InputError → 422 naming what is wrong and
where), and only then is the pipeline created; a repeat of an Idempotency-Key is answered before
that check. JSON bodies go on to the route in pipelines.py.
"""

import asyncio
import shutil
import uuid
from pathlib import Path

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.routing import Match
from starlette.types import Scope

from app import idempotency, service
from app.api.auth import WriteAccess
from app.api.deps import SessionDep
from app.api.forms import part_file
from app.api.forms.multipart import FILE_FIELD, ReceivedForm, receive_form
from app.api.idempotency_key import IdempotencyKey
from app.api.schemas import PipelineCreate, PipelineOut
from app.api.upload_schemas import PipelineUpload
from app.config import get_settings
from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline.input_files import compression, inputs
from app.pipeline.store import uploads_dir


def is_multipart(scope: Scope) -> bool:
    content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
    return bool(content_type.lower().startswith(b"multipart/form-data"))


class MultipartRoute(APIRoute):
    """Matches only multipart/form-data requests, so other bodies reach the JSON route."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match != Match.NONE and not is_multipart(scope):
            return Match.NONE, {}
        return match, child


router = APIRouter(prefix="/api/pipelines", tags=["pipelines"], route_class=MultipartRoute)


async def _still_there(pipeline_id: int) -> bool:
    try:
        async with get_sessionmaker()() as session:
            return await session.get(Pipeline, pipeline_id) is not None
    except Exception:  # the database is down: keep the file rather than break the pipeline
        return True


def _fields(form: ReceivedForm) -> PipelineUpload:
    try:
        return PipelineUpload.model_validate(form.fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


def _prepare(form: ReceivedForm, declared: str | None, dest: Path) -> inputs.CheckedInput:
    """Decompress the uploaded file if needed and check it as a whole (runs in a thread)."""
    if form.file_path is None or form.file_name is None:
        raise inputs.InputError(FILE_FIELD, "send the input file as the form field 'file'")
    if form.file_as_text:  # no file name to tell the format by
        fmt = part_file.format_of_text(form.file_path, declared)
    elif not form.file_name and declared is None:  # `filename=`: "the format of ''" said nothing
        raise inputs.InputError(
            FILE_FIELD,
            "sent with an empty file name, so its format cannot be told; send its name (curl -F "
            "file=@data.csv) or format=csv|jsonl|parquet with it",
        )
    else:
        fmt = inputs.format_of(form.file_name, declared)
    stored = dest / f"input.{fmt}"
    if not compression.decompress(form.file_path, stored):
        form.file_path.replace(stored)
    form.file_path.unlink(missing_ok=True)
    return inputs.CheckedInput(stored, fmt, inputs.check(stored, fmt, dest))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WriteAccess],
    include_in_schema=False,  # documented on the JSON route, which shares the path
)
async def upload_pipeline(
    request: Request, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> PipelineOut:
    """Create a pipeline from an uploaded CSV, JSON Lines or Parquet file (fields: name,
    description, trigger, format, file)."""
    dest = uploads_dir() / uuid.uuid4().hex
    dest.mkdir(parents=True)
    keep = False
    try:
        form = await receive_form(request, dest, max_bytes=get_settings().max_upload_bytes)
        fields = _fields(form)
        data = PipelineCreate(
            name=fields.name, description=fields.description, trigger=fields.trigger
        )
        asked = {"form": fields.model_dump(mode="json"), "file": form.file_name}
        request_hash = idempotency.fingerprint({**asked, "sha256": form.file_sha256})
        pipeline = await idempotency.repeat_of(session, idempotency_key, request_hash)
        created = False
        if pipeline is None:  # a new key, or none: only now is the file unpacked and checked
            source = await asyncio.to_thread(_prepare, form, fields.format, dest)
            pipeline, created = await service.create_pipeline(
                session=session,
                data=data,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                source=source,
            )
        keep, pipeline_id = created, pipeline.id
        try:
            run = await service.first_run(
                session=session, pipeline=pipeline, trigger=data.trigger, created=created
            )
        except BaseException:
            # removed with its first run when Prefect refused it; a failure before that (the
            # database) leaves the pipeline, which still needs its file
            keep = created and await _still_there(pipeline_id)
            raise
    finally:
        if not keep:
            await asyncio.to_thread(shutil.rmtree, dest, ignore_errors=True)
    return await service.pipeline_view(session=session, pipeline=pipeline, run=run)
