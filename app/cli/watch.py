"""`--wait`: poll a pipeline until its run ends, redrawing the stages live, then say how it ended."""

import time
from typing import Any

import typer
from rich.console import Console
from rich.live import Live

from app.cli import base, render
from app.cli.client import Api, CliError, ExitCode

PAGE_SIZE = 100


def _run_of(api: Api, pipeline: dict[str, Any], run_id: int) -> dict[str, Any]:
    """Run `run_id` of the pipeline: its latest run, unless a newer one has started since."""
    latest = pipeline["latest_run"]
    if latest is not None and latest["id"] == run_id:
        return dict(latest)
    runs = api.get(f"/api/pipelines/{pipeline['id']}/runs", page_size=PAGE_SIZE)["items"]
    for run in runs:
        if run["id"] == run_id:
            return dict(run)
    raise CliError(f"run {run_id} of pipeline {pipeline['id']} not found", ExitCode.REFUSED)


def follow(
    api: Api,
    pipeline_id: int,
    run_id: int,
    *,
    console: Console,
    interval: float,
    timeout: float | None,
    draw: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline and its run `run_id` once the run is final; `draw` shows the stages."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pipeline = api.get(f"/api/pipelines/{pipeline_id}")
    run = _run_of(api, pipeline, run_id)
    spinner = "dots" if base.is_utf8(console.file) else "line"  # braille, or - \ | /
    # a terminal sees the stages redrawn as they change; a file or pipe gets the final table
    live = (
        Live(
            render.progress(pipeline, run, spinner=spinner, width=console.width),
            console=console,
            refresh_per_second=8,
        )
        if draw and console.is_terminal
        else None
    )
    try:
        if live is not None:
            live.start(refresh=True)
        while run["status"] not in render.FINAL:
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(
                    f"gave up waiting after {timeout:g} s: run {run_id} of pipeline "
                    f"{pipeline_id} is still {run['status']}; follow it with `pipeline watch "
                    f"{pipeline_id}`",
                    ExitCode.TIMEOUT,
                )
            # never past the deadline: the last poll is at the deadline, then the check above
            left = interval if deadline is None else max(0.0, deadline - time.monotonic())
            time.sleep(min(interval, left))
            pipeline = api.get(f"/api/pipelines/{pipeline_id}")
            run = _run_of(api, pipeline, run_id)
            if live is not None:
                live.update(render.progress(pipeline, run, spinner=spinner, width=console.width))
    except KeyboardInterrupt:
        raise CliError(
            f"stopped watching; run {run_id} of pipeline {pipeline_id} goes on: "
            f"`pipeline watch {pipeline_id}` follows it again, `pipeline cancel {pipeline_id}` "
            "stops it",
            ExitCode.INTERRUPTED,
        ) from None
    finally:
        final = render.progress(pipeline, run, spinner=None, width=console.width)
        if live is not None:
            live.update(final)
            live.stop()
        elif draw:
            console.print(final)
    return pipeline, run


def outcome(pipeline: dict[str, Any], run: dict[str, Any], console: Console) -> None:
    """Say how the run ended: a line on stdout when it completed, else a CliError (exit 1)."""
    where = f"run {run['id']} of pipeline {pipeline['id']}"
    if run["status"] == "completed":
        console.print(
            f"{where} completed in {render.duration(run['duration_seconds'])}: "
            f"{render.records(run['records_processed'])} processed"
            + (
                f", {render.count(run['records_rejected'])} rejected"
                if run["records_rejected"]
                else ""
            )
            + (
                f"; save them with `pipeline download {pipeline['id']}`"
                if run["output_file"]
                else ""
            ),
            soft_wrap=True,
            highlight=False,
        )
        return
    verb = "failed" if run["status"] == "failed" else "was cancelled"
    raise CliError(f"{where} {verb}: {run['error'] or 'no reason given'}", ExitCode.RUN_FAILED)


def finish(
    api: Api,
    pipeline_id: int,
    run_id: int,
    *,
    as_json: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """Follow run `run_id` to its end; exit 1 unless it completed."""
    console = base.stdout()
    pipeline, run = follow(
        api,
        pipeline_id,
        run_id,
        console=console,
        interval=interval,
        timeout=timeout,
        draw=not as_json,
    )
    if as_json:
        base.print_json({**pipeline, "latest_run": run})
        if run["status"] != "completed":
            raise typer.Exit(ExitCode.RUN_FAILED)
        return
    outcome(pipeline, run, console)
