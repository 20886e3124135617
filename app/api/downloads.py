"""A run's file as it is downloaded, and how a download that stops early is logged: a disk error
once the response has started (EIO mid-file) as the file and the OS error, a client that went away
as that. Starlette logged the first only as "Caught handled exception, but response already
started" (the status line has gone, no error answer can follow, the client's copy is cut short
whatever is logged), and the second not at all."""

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import polars as pl
from fastapi.exceptions import RequestValidationError
from polars.datatypes import DataType, DataTypeClass
from starlette.types import Message, Receive, Scope, Send

from app.api.served import ServedFile
from app.pipeline.input_files import sent_lines

logger = logging.getLogger(__name__)
_FRACTION_DIGITS = {"ms": 3, "us": 6, "ns": 9}


def timestamps_as_text(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`frame` with its timestamps as ISO 8601 text, the one way CSV and JSON Lines downloads write
    them (Polars' CSV writer wrote 2026-03-01T12:00:00.000000, its JSON writer 2026-03-01 12:00:00,
    in a list or struct column too): a T, the column's fractional digits, and its offset when it
    has a zone (+00:00); a naive column (created_at, in UTC) has none, as in the Parquet file."""
    columns = [
        text.alias(name)
        for name, dtype in frame.collect_schema().items()
        if (text := _as_text(pl.col(name), dtype)) is not None
    ]
    return frame.with_columns(columns) if columns else frame


def converted_as_sent(source: Path, target: Path, fmt: str) -> bool:
    """Write the rejects file `source` to `target` in `fmt` (csv, jsonl) as its JSON Lines input
    sent its rows, when ingest kept their lines (app/pipeline/input_files/sent_lines.py): in JSON
    Lines each row's line with its reject_reason, in CSV each value's text as written (5000, not 5000.0).
    False, writing nothing, when it did not: another format's rejects, or an input file that
    changed before ingest could read it again."""
    if fmt not in ("csv", "jsonl") or not sent_lines.kept(source):
        return False
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "jsonl":
            sent_lines.write_lines(sent_lines.as_sent(source), staging)
        else:
            with sent_lines.as_written(source, target.parent) as written:
                _refuse_nul(written)
                written.sink_csv(staging, engine="streaming")
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return True


def _refuse_nul(written: pl.LazyFrame) -> None:
    """A 422 for a CSV of rows whose lines sent `\\u0000` or an unpaired surrogate: Polars reads
    both as NUL, which the CSV would hold as a raw byte (and `sur\\udc00` as `sur` and NUL)."""
    found = written.select(pl.col(pl.String).str.contains("\x00", literal=True).any()).collect()
    columns = [name for name in found.columns if found[name].item()]
    if columns:
        problem = (
            f"csv cannot hold the rejected rows as sent: column(s) {', '.join(columns)} hold a "
            "\\u0000 or an unpaired surrogate (such as \\ud800), which CSV would carry as a NUL "
            "byte; download format=jsonl (each line as it was sent) or format=parquet"
        )
        raise RequestValidationError(
            [{"loc": ("query", "format"), "msg": problem, "type": "unwritable_text"}]
        )


def _as_text(value: pl.Expr, dtype: DataType | DataTypeClass) -> pl.Expr | None:
    """`value` with the timestamps in it as text, at any depth of lists, arrays and structs; None
    when it holds none."""
    if isinstance(dtype, DataTypeClass):  # a schema made in code may hold one: pl.List(pl.Date)
        dtype = dtype()
    if isinstance(dtype, pl.Datetime):
        return value.dt.to_string(
            f"%Y-%m-%dT%H:%M:%S%.{_FRACTION_DIGITS[dtype.time_unit or 'us']}f"
            + ("%:z" if dtype.time_zone else "")
        )
    if isinstance(dtype, pl.List | pl.Array):
        inner = _as_text(pl.element(), dtype.inner)
        if inner is None:
            return None
        return value.list.eval(inner) if isinstance(dtype, pl.List) else value.arr.eval(inner)
    if isinstance(dtype, pl.Struct):
        fields = [
            text.alias(part.name)
            for part in dtype.fields
            if (text := _as_text(pl.field(part.name), part.dtype)) is not None
        ]
        return value.struct.with_fields(fields) if fields else None
    return None


class RunDownload(ServedFile):
    """ServedFile naming, when it stops before its end, the run's file (`shown`, not the second
    name it is served from), how far the download got and why."""

    def __init__(self, path: Path, *, shown: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.shown = shown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, sent, complete, gone = False, 0, False, False

        async def sending(message: Message) -> None:
            nonlocal started, sent, complete, gone
            try:
                await send(message)
            except BaseException:  # the client went away (cancelled, or the server's OSError)
                gone = True
                raise
            started = started or message["type"] == "http.response.start"
            sent += len(message.get("body", b""))
            complete = complete or message.get("more_body") is False  # no read is left to fail

        try:
            await super().__call__(scope, receive, sending)
        except OSError as exc:
            if gone:  # a server of ASGI 2.4 raises it from send once the client has gone
                self._log_gone(sent)
                return
            if not started or complete:
                raise
            # the server closes the connection: the client sees a body shorter than its length
            logger.error(
                "download of %s stopped after %s bytes: reading the file failed (%s); the "
                "client's copy is cut short",
                self.shown,
                f"{sent:,}",
                exc,
            )
            return
        if started and not complete:  # Starlette stopped sending on the client's disconnect
            self._log_gone(sent)

    def _log_gone(self, sent: int) -> None:
        logger.warning(
            "download of %s stopped after %s bytes: the client closed the connection",
            self.shown,
            f"{sent:,}",
        )
