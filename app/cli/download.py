"""`pipeline download`: a run's results, rejects or summary, from the API to a file or stdout.

The API serves them at /api/pipelines/{id}/runs/{run}/output, /rejects and /summary; the server's
own path of a run's file (`output_file`) is of no use on another machine. Where and how it is
written: app/cli/saving.py.
"""

import re
from enum import StrEnum
from typing import Annotated, BinaryIO

import httpx
import typer

from app.cli import descriptors, saving
from app.cli.base import PipelineId, RunOption, api, command, stdout
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
    run: RunOption = None,
    file_format: Annotated[
        FileFormat | None,
        typer.Option(
            "--format",
            help="For results and rejects: parquet (as stored), csv or jsonl.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="The file to write (a device, a FIFO or /dev/stdout is written into), a "
            "directory to write it into, or - for stdout (default: the API's name for it, such as "
            "pipeline-1-run-2-results.parquet, here).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a file that exists.")] = False,
) -> None:
    """Save a run's results, rejects or summary (the latest run's unless --run).

    Exits 2 when --output cannot be used as given (a file that exists without --force, a
    directory that does not exist, Parquet to a terminal) and 9 when the file cannot be written.
    """
    if what is What.SUMMARY and file_format is not None:
        raise typer.BadParameter(
            "only results and rejects take a format; the summary is JSON (leave --format out)",
            param_hint="--format",
        )
    binary = what is not What.SUMMARY and file_format in (None, FileFormat.PARQUET)
    saving.check_output(output, binary=binary, force=force)
    client = api(ctx)
    run_id = run or _latest_run(client, pipeline_id)
    path = f"/api/pipelines/{pipeline_id}/runs/{run_id}/{ENDPOINTS[what]}"
    params = {"format": file_format.value} if file_format else {}

    def save(response: httpx.Response) -> None:
        def copy(into: BinaryIO) -> int:
            return _copy(response, into)

        if output is not None and (descriptor := descriptors.named(output)) is not None:
            # -, /dev/stdout, /dev/fd/3: what the shell opened is written into, never replaced
            saved = saving.save_into(descriptor, output, copy)
        else:
            name = _served_name(response) or f"pipeline-{pipeline_id}-run-{run_id}-{what.value}"
            saved = saving.save(saving.target(output, name, force=force), copy)
        if saved is not None:
            stdout().print(saved.said(), soft_wrap=True)

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


def _copy(response: httpx.Response, into: BinaryIO) -> int:
    size = 0
    for chunk in response.iter_bytes():
        into.write(chunk)
        size += len(chunk)
    return size
