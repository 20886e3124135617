"""`pipeline download`: a run's results, rejects or summary, from the API to a file or stdout.

The API serves them at /api/pipelines/{id}/runs/{run}/output, /rejects and /summary; the server's
own path of a run's file (`output_file`) is of no use on another machine. The file is written
beside its destination and renamed into place once whole: an interrupted download leaves none.
"""

import os
import re
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, BinaryIO

import httpx
import typer

from app.cli.base import PipelineId, api, command, stdout
from app.cli.client import Api, CliError, ExitCode


class What(StrEnum):
    RESULTS = "results"
    REJECTS = "rejects"
    SUMMARY = "summary"


class FileFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"
    JSONL = "jsonl"


ENDPOINTS = {What.RESULTS: "output", What.REJECTS: "rejects", What.SUMMARY: "summary"}
_FILENAME = re.compile(r'filename="([^"/\\]+)"')


@command()
def download(
    ctx: typer.Context,
    pipeline_id: PipelineId,
    what: Annotated[
        What, typer.Argument(help="results (a completed run's), rejects, or summary (JSON).")
    ] = What.RESULTS,
    run: Annotated[
        int | None,
        typer.Option(
            "--run", min=1, help="The run's id (default: the latest run).", show_default=False
        ),
    ] = None,
    file_format: Annotated[
        FileFormat | None,
        typer.Option(
            "--format",
            help="For results and rejects: parquet (as stored), csv or jsonl.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The file to write, a directory to write it into, or - for stdout "
            "(default: the API's name for it, such as pipeline-1-run-2-results.parquet, here).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a file that exists.")] = False,
) -> None:
    """Save a run's results, rejects or summary (the latest run's unless --run)."""
    if what is What.SUMMARY and file_format is not None:
        raise CliError(
            "--format is for results and rejects; the summary is JSON (leave --format out)",
            ExitCode.USAGE,
        )
    client = api(ctx)
    run_id = run or _latest_run(client, pipeline_id)
    path = f"/api/pipelines/{pipeline_id}/runs/{run_id}/{ENDPOINTS[what]}"
    params = {"format": file_format.value} if file_format else {}
    to_stdout = output == Path("-")

    def save(response: httpx.Response) -> None:
        if to_stdout:
            _copy(response, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        name = _served_name(response) or f"pipeline-{pipeline_id}-run-{run_id}-{what.value}"
        target = _target(output, name, force=force)
        size = _write(response, target)
        stdout().print(f"saved {target} ({size:,} bytes)", soft_wrap=True)

    client.download(path, save, **params)


def _latest_run(client: Api, pipeline_id: int) -> int:
    pipeline = client.get(f"/api/pipelines/{pipeline_id}")
    if pipeline["latest_run"] is None:
        raise CliError(
            f"pipeline {pipeline_id} has not run yet; start it with `pipeline trigger {pipeline_id}`",
            ExitCode.REFUSED,
        )
    return int(pipeline["latest_run"]["id"])


def _served_name(response: httpx.Response) -> str | None:
    """The file name the API gives (Content-Disposition), never a path."""
    match = _FILENAME.search(response.headers.get("content-disposition", ""))
    return match[1] if match and match[1] not in (".", "..") else None


def _target(output: Path | None, name: str, *, force: bool) -> Path:
    target = output / name if output and output.is_dir() else output or Path(name)
    if target.exists() and not force:
        raise CliError(
            f"{target} exists; pass --force to replace it, or --output another path",
            ExitCode.USAGE,
        )
    return target


def _write(response: httpx.Response, target: Path) -> int:
    """The body into `target`, whole or not at all; its size."""
    try:
        descriptor, name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}", ExitCode.USAGE) from None
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            size = _copy(response, handle)
        partial.chmod(0o666 & ~_umask())  # as the file a shell's redirect makes: 0600 otherwise
        os.replace(partial, target)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}", ExitCode.USAGE) from None
    finally:
        partial.unlink(missing_ok=True)
    return size


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _copy(response: httpx.Response, into: BinaryIO) -> int:
    size = 0
    for chunk in response.iter_bytes():
        into.write(chunk)
        size += len(chunk)
    return size
