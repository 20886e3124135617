"""How the CLI draws what the API returns: tables of pipelines, runs and stages, in UTC."""

from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from app import display

FINAL = frozenset({"completed", "failed", "cancelled"})
STYLES = {
    "created": "dim",
    "pending": "dim",
    "running": "cyan",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "yellow",
}


def status(value: str) -> Text:
    return Text(value, style=STYLES.get(value, ""))


def one_line(value: str | None, *, style: str) -> Text:
    """A table cell that is cut with … rather than wrapped."""
    return Text(value or "", style=style, no_wrap=True, overflow="ellipsis")


def count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def duration(seconds: float | None) -> str:
    return display.duration(seconds, unknown="")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def timestamp(value: str | None) -> str:
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def elapsed(item: dict[str, Any], now: datetime) -> float | None:
    """A finished stage's or run's duration; a running one's time so far."""
    if item.get("duration_seconds") is not None:
        return float(item["duration_seconds"])
    started = parse_time(item.get("started_at"))
    if started is None or item["status"] in FINAL:
        return None
    return max((now - started).total_seconds(), 0.0)


def stages_table(run: dict[str, Any], *, now: datetime, spinner: bool = False) -> Table:
    """One row per stage: status, duration (so far, while running), records in/out, error."""
    table = Table(box=box.ROUNDED, title_justify="left")
    table.add_column("stage", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("records in", justify="right", no_wrap=True)
    table.add_column("records out", justify="right", no_wrap=True)
    table.add_column("error")  # cut to the width left; the whole error is printed elsewhere
    for stage in run["stages"]:
        cell: RenderableType = status(stage["status"])
        if spinner and stage["status"] == "running":
            cell = Spinner("dots", text=status("running"), style="cyan")
        note = (
            one_line(stage["error"], style="red")
            if stage["error"]
            else one_line(stage["message"], style="dim")
        )
        table.add_row(
            stage["name"],
            cell,
            duration(elapsed(stage, now)),
            count(stage["records_in"]),
            count(stage["records_out"]),
            note,
        )
    return table


def run_summary(run: dict[str, Any], now: datetime) -> Text:
    """`run 3 · completed in 2.41 s · 1,000 processed, 2 rejected`."""
    text = Text(f"run {run['id']} · ")
    text.append_text(status(run["status"]))
    took = duration(elapsed(run, now))
    if took:
        text.append(f" {'in' if run['status'] in FINAL else 'for'} {took}")
    if run.get("records_processed") is not None:
        text.append(f" · {count(run['records_processed'])} processed")
        if run.get("records_rejected"):
            text.append(f", {count(run['records_rejected'])} rejected")
    return text


def progress(pipeline: dict[str, Any], run: dict[str, Any], *, spinner: bool) -> Group:
    """What `--wait` keeps redrawing: the pipeline and run on one line, then the stages."""
    now = datetime.now(UTC)
    title = Text(f"pipeline {pipeline['id']} “{pipeline['name']}” · ", style="bold")
    title.append_text(run_summary(run, now))
    return Group(title, stages_table(run, now=now, spinner=spinner))


def pipelines_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=box.ROUNDED)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column("records", justify="right", no_wrap=True)
    table.add_column("run", justify="right", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    now = datetime.now(UTC)
    for item in items:
        run = item["latest_run"]
        table.add_row(
            str(item["id"]),
            item["name"],
            status(item["status"]),
            count(item["record_count"]),
            str(run["id"]) if run else "",
            timestamp(item["created_at"]),
            duration(elapsed(run, now)) if run else "",
        )
    return table


def runs_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(box=box.ROUNDED)
    table.add_column("run", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("processed", justify="right", no_wrap=True)
    table.add_column("rejected", justify="right", no_wrap=True)
    table.add_column("error")
    now = datetime.now(UTC)
    for run in runs:
        table.add_row(
            str(run["id"]),
            status(run["status"]),
            timestamp(run["created_at"]),
            duration(elapsed(run, now)),
            count(run["records_processed"]),
            count(run["records_rejected"]),
            one_line(run["error"], style="red"),
        )
    return table


def log_line(line: dict[str, Any]) -> Text:
    """`14:03:07.123 INFO    prefect.task_runs  message` (UTC)."""
    moment = datetime.fromisoformat(line["timestamp"]).astimezone(UTC)
    level = line["level"]
    style = {"ERROR": "bold red", "CRITICAL": "bold red", "WARNING": "yellow"}.get(level, "")
    text = Text(f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d} ", style="dim")
    text.append(f"{level:<8}", style=style or "dim")
    text.append(f"{line['logger']}  ", style="dim")
    text.append(line["message"], style=style)
    return text
