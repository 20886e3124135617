"""Idempotency-Key: the same key (within the window) returns the same pipeline or run, and a race
between two requests with one key is settled by the database's unique index, never by luck."""

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.config import get_settings
from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, Status, utcnow

Row = TypeVar("Row", Pipeline, PipelineRun)
T = TypeVar("T")
MAX_KEY_LENGTH = 200
WAIT_FOR_WINNER_SECONDS = 15.0


class KeyInUseError(RuntimeError):
    """The first request with this key has not finished yet (answered with 409)."""


class KeyReusedError(ValueError):
    """The key was first used with a different request (answered with 422)."""


def fingerprint(request: Mapping[str, Any]) -> str:
    """What a request asks for, as a digest: its fields as validated (defaults filled in), and
    for an upload its file's own digest. A repeat with the same key must have the same."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_request(pipeline: Pipeline, key: str, request_hash: str | None) -> Pipeline:
    """The pipeline a repeat of its create request answers with; KeyReusedError when the
    repeat asks for something else (a pipeline made before the digests were kept: no check)."""
    if request_hash and pipeline.request_hash and pipeline.request_hash != request_hash:
        raise KeyReusedError(
            f"Idempotency-Key {key!r} was first used to create pipeline {pipeline.id} "
            f"({pipeline.name!r}) with a different request; send a new key for a new "
            "request, or repeat the first one exactly"
        )
    return pipeline


async def repeat_of(session: AsyncSession, key: str | None, request_hash: str) -> Pipeline | None:
    """The pipeline a create request with `key` repeats, or None for a new key. A route looks it
    up before it checks the request's input file, which may have changed or gone since the first
    request; KeyReusedError when the repeat asks for something else. The lookup's transaction
    ends with it: no connection is held while a new key's file is checked (up to minutes)."""
    if not key:
        return None
    seen = await find(session, Pipeline, key)
    await session.commit()
    return None if seen is None else same_request(seen, key, request_hash)


def run_key(pipeline_id: int, key: str) -> str:
    """Trigger keys are scoped to their pipeline."""
    return f"{pipeline_id}:{key}"


def retry_key(pipeline_id: int, key: str) -> str:
    """Retry keys too, apart from its trigger keys: no `run_key` is spelled like one."""
    return f"{pipeline_id}/retry:{key}"


def own_key(pipeline_id: int, what: str) -> str:
    """A key the server gives a run itself, apart from every key a client sends: the character
    after a pipeline's digits names the space (':' trigger, '/' retry, '#' the server's own)."""
    return f"{pipeline_id}#{what}"


_SCOPES = {"trigger": run_key, "retry": retry_key}


async def run_of(
    session: AsyncSession, *, pipeline_id: int, key: str | None, verb: Literal["trigger", "retry"]
) -> tuple[str | None, PipelineRun | None]:
    """A request to `verb` the pipeline with Idempotency-Key `key`: the key as its run keeps it,
    and the run of its first use if this is a repeat. KeyReusedError when `key` already started a
    run by the other request: the repeat would be answered with a run it did not ask for, or
    make a second one."""
    if key is None:
        return None, None
    scoped = _SCOPES[verb](pipeline_id, key)
    if seen := await wait_for_run(scoped):
        return scoped, seen
    other = "retry" if verb == "trigger" else "trigger"
    if run := await find(session, PipelineRun, _SCOPES[other](pipeline_id, key)):
        raise KeyReusedError(
            f"Idempotency-Key {key!r} was first used to {other} pipeline {run.pipeline_id} "
            f"(run {run.id}), not to {verb} it; send a new key for a new request, or repeat the "
            "first one exactly"
        )
    return scoped, None


def spellings(key: str) -> list[str]:
    """`key`, and for a non-ASCII key the spelling it was stored under until 2026-11-27: its
    UTF-8 bytes read as latin-1 ('clé' was kept as 'clÃ©'), so a repeat sent after the change
    still finds the row made before it (within the window)."""
    if key.isascii():
        return [key]
    return [key, key.encode("utf-8").decode("latin-1")]


async def find(session: AsyncSession, model: type[Row], key: str) -> Row | None:
    """The row holding `key`, if it was created within the window; an expired key is released."""
    query = (
        select(model)
        .where(model.idempotency_key.in_(spellings(key)))
        .order_by(model.id)  # the first request's, should both spellings be held
        .limit(1)
        .execution_options(populate_existing=True)
    )
    if model is PipelineRun:
        query = query.options(selectinload(PipelineRun.stages))
    row = (await session.execute(query)).scalars().first()
    if row is None:
        return None
    window = timedelta(seconds=get_settings().idempotency_window_seconds)
    if utcnow() - row.created_at <= window:
        return row
    await _release(session, model, row.id)
    return None


async def _release(session: AsyncSession, model: type[Row], row_id: int) -> None:
    """The key may be used again; the row keeps everything else."""
    await session.execute(update(model).where(model.id == row_id).values(idempotency_key=None))
    await session.commit()


async def wait_for_winner(
    look: Callable[[AsyncSession], Awaitable[tuple[bool, T]]], *, still_busy: str
) -> T:
    """What `look` finds once it says the first request with a key is done (it returns done and
    what it found); KeyInUseError(still_busy) after WAIT_FOR_WINNER_SECONDS.

    Each look is a fresh session: a long read snapshot would hide the winner's commit."""
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_WINNER_SECONDS
    while True:
        async with get_sessionmaker()() as session:
            done, found = await look(session)
        if done:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise KeyInUseError(f"{still_busy}; repeat this request in a few seconds")
        await asyncio.sleep(0.1)


async def wait_for_run(key: str) -> PipelineRun | None:
    """The winning request's run once it has its flow run; None if that trigger failed, or
    never reached Prefect (its process stopped; the watchdog then failed the run): the key is
    released then, so this request makes the run."""

    async def look(session: AsyncSession) -> tuple[bool, PipelineRun | None]:
        run = await find(session, PipelineRun, key)
        if run is not None and run.prefect_flow_run_id is None and run.status == Status.FAILED:
            await _release(session, PipelineRun, run.id)
            return True, None
        return run is None or run.prefect_flow_run_id is not None, run

    return await wait_for_winner(look, still_busy=f"{_request_of(key)} is still being processed")


def _request_of(key: str) -> str:
    """The request a scoped key was made for, in the words its client would know it by."""
    scoped = key.lstrip("0123456789")
    if scoped.startswith("#"):
        return f"the {scoped[1:]}"
    return f"a request with Idempotency-Key {scoped.split(':', 1)[1]!r}"
