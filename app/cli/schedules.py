"""`pipeline schedule …`: a pipeline's schedule, kept by Prefect — set, show, pause, resume, remove;
and `pipeline schedules`, every one of them."""

import contextlib
import re
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from app.cli import render
from app.cli.base import JsonOption, PipelineId, api, app, command, print_json, stdout
from app.cli.client import CliError
from app.schedule_intervals import EVERY_FORMS, interval_seconds

group = typer.Typer(
    name="schedule",
    help="A pipeline's schedule: Prefect starts a run of it at every cron tick or interval.",
    no_args_is_help=True,
)
app.add_typer(group)


# The API's words for what these commands take: its body's fields (at the start of each of a
# 422's problems) are options here, and its endpoints commands
_OPTIONS = {"cron": "--cron", "interval_seconds": "--every", "anchor_date": "--anchor"}
_IN_CLI_TERMS = (
    (re.compile(r"(^|; )(cron|interval_seconds|anchor_date|timezone): "), None),
    (re.compile(r"DELETE /api/pipelines/(\d+)/schedule"), r"pipeline schedule remove \1"),
    (re.compile(r"GET /api/pipelines/(\d+)/schedule"), r"pipeline schedule show \1"),
)


def _option(match: re.Match[str]) -> str:
    return f"{match[1]}{_OPTIONS.get(match[2], f'--{match[2]}')}: "


@contextlib.contextmanager
def _said_here() -> Iterator[None]:
    """The API's refusals in the terms of these commands: `--anchor: …`, not `anchor_date: …`."""
    try:
        yield
    except CliError as exc:
        text = exc.message
        for pattern, replacement in _IN_CLI_TERMS:
            text = pattern.sub(replacement or _option, text)
        raise CliError(text, exc.code) from None


def _when(schedule: dict[str, Any]) -> str:
    if schedule["cron"] is not None:
        both = ", on days matching both its day fields" if schedule.get("day_or") is False else ""
        return f"cron {schedule['cron']} ({schedule['timezone']}{both})"
    if schedule["interval_seconds"] is None:  # a recurrence rule set in Prefect itself
        rule = " ".join(str(schedule.get("rrule")).split())  # Prefect adds a DTSTART line
        return f"rrule {rule} ({schedule['timezone']}; set in Prefect)"
    seconds = schedule["interval_seconds"]  # 31622400, not :g's 3.16224e+07
    shown = f"{int(seconds)}" if float(seconds).is_integer() else f"{seconds}"
    return f"every {shown} s ({schedule['timezone']})"


def _next(schedule: dict[str, Any], *, unit: str = "") -> str:
    if not schedule["active"]:
        return "paused"
    return f"{render.timestamp(schedule['next_run_at'])}{unit}" if schedule["next_run_at"] else "—"


def _print(schedule: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(schedule)
        return
    stdout().print(
        f"pipeline {schedule['pipeline_id']}: {_when(schedule)}; "
        f"next run: {_next(schedule, unit=' UTC')}",
        soft_wrap=True,
    )


@command("set", group=group)
def set_(
    ctx: typer.Context,
    pipeline_id: PipelineId,
    cron: Annotated[
        str | None,
        typer.Option(help="A cron expression, e.g. '0 6 * * 1-5' (06:00 on weekdays)."),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            help=f"An interval instead: {EVERY_FORMS} (10 seconds to 366 days).",
            show_default=False,
        ),
    ] = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            help="With --every: the runs fall at this time plus whole intervals; a date and time "
            "with its UTC offset, e.g. 2026-01-01T06:00:00Z (the time of the command without it)."
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="The IANA timezone the cron expression is read in.")
    ] = "UTC",
    paused: Annotated[bool, typer.Option("--paused", help="Set it, but paused.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create or replace the pipeline's whole schedule: a cron expression or an interval (a
    paused schedule set again without --paused is active again)."""
    if (cron is None) == (every is None):
        raise typer.BadParameter("give exactly one of --cron or --every", param_hint="--cron")
    body: dict[str, Any] = {"timezone": timezone, "active": not paused}
    if anchor is not None and every is None:
        raise typer.BadParameter("--anchor goes with --every, not --cron", param_hint="--anchor")
    if every is not None:
        try:
            body["interval_seconds"] = interval_seconds(every)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--every") from None
    else:
        body["cron"] = cron
    if anchor is not None:
        body["anchor_date"] = anchor
    with _said_here():
        schedule = api(ctx).request("PUT", f"/api/pipelines/{pipeline_id}/schedule", json=body)
    _print(schedule, as_json=as_json)


@command("show", group=group)
def show(ctx: typer.Context, pipeline_id: PipelineId, as_json: JsonOption = False) -> None:
    """The pipeline's schedule and when it next runs."""
    with _said_here():
        schedule = api(ctx).get(f"/api/pipelines/{pipeline_id}/schedule")
    _print(schedule, as_json=as_json)


@command("pause", group=group)
def pause(ctx: typer.Context, pipeline_id: PipelineId, as_json: JsonOption = False) -> None:
    """Stop starting runs (those waiting are removed) until resumed."""
    with _said_here():
        schedule = api(ctx).post(f"/api/pipelines/{pipeline_id}/schedule/pause")
    _print(schedule, as_json=as_json)


@command("resume", group=group)
def resume(ctx: typer.Context, pipeline_id: PipelineId, as_json: JsonOption = False) -> None:
    """Start runs on the schedule again."""
    with _said_here():
        schedule = api(ctx).post(f"/api/pipelines/{pipeline_id}/schedule/resume")
    _print(schedule, as_json=as_json)


@command("remove", group=group)
def remove(ctx: typer.Context, pipeline_id: PipelineId) -> None:
    """Remove the pipeline's schedule (its runs so far are kept)."""
    with _said_here():
        api(ctx).request("DELETE", f"/api/pipelines/{pipeline_id}/schedule")
    stdout().print(f"pipeline {pipeline_id}: schedule removed")


@command("schedules")
def schedules(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every pipeline's schedule, by pipeline id."""
    found = api(ctx).get("/api/schedules")
    if as_json:
        print_json(found)
        return
    if not found:
        stdout().print("no schedules; set one with: pipeline schedule set ID --cron '0 6 * * *'")
        return
    table = Table(box=box.ROUNDED)
    table.add_column("pipeline", justify="right", no_wrap=True)
    table.add_column("when")
    table.add_column("next run (UTC)", no_wrap=True)
    for schedule in found:
        gone = not schedule.get("pipeline_exists", True)
        table.add_row(
            str(schedule["pipeline_id"]),
            _when(schedule),
            "pipeline gone" if gone else _next(schedule),
        )
    stdout().print(table)
    for schedule in found:
        if not schedule.get("pipeline_exists", True):
            pipeline_id = schedule["pipeline_id"]
            doing = "makes runs that end Cancelled" if schedule["active"] else "is paused"
            stdout().print(
                f"pipeline {pipeline_id} no longer exists; its schedule {doing}; remove it with "
                f"pipeline schedule remove {pipeline_id}",
                soft_wrap=True,
            )
