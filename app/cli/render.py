"""How the CLI draws what the API returns: tables of pipelines, runs and stages, in UTC."""

from datetime import UTC, datetime
from typing import Any, cast

from rich import box
from rich.console import Group
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


def records(value: int | None) -> str:
    """`1 record`, `1,000 records`."""
    return f"{count(value)} record{'' if value == 1 else 's'}"


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


def stages_table(
    run: dict[str, Any], *, now: datetime, spinner: str | None = None, width: int = 240
) -> Table:
    """One row per stage: status, duration (so far, while running), records in/out, error; in a
    narrow terminal (`width`) the error goes first, then the records, never status or duration.
    `spinner` (a Rich spinner's name) turns on the running stage."""
    rows = []
    for stage in run["stages"]:
        cell: Text | Spinner = status(stage["status"])
        if spinner and stage["status"] == "running":
            cell = Spinner(spinner, text=status("running"), style="cyan")
        rows.append(
            {
                "stage": stage["name"],
                "status": cell,
                "duration": duration(elapsed(stage, now)),
                "records in": count(stage["records_in"]),
                "records out": count(stage["records_out"]),
                # cut to the width left; the whole error is printed elsewhere
                "error": one_line(stage["error"], style="red")
                if stage["error"]
                else one_line(stage["message"], style="dim"),
            }
        )
    return _fitted(
        rows,
        width,
        right={"duration", "records in", "records out"},
        fold="error",
        drop=("error", "records in", "records out"),
        fold_min=min(8, max((_cells(row["error"]) for row in rows), default=0)),
    )


def source(pipeline: dict[str, Any]) -> str:
    """Where a pipeline's records come from, as its user can use it: generated; a file's name under
    PIPELINE_INPUT_DIR (what --input-path takes); or, in the dashboard's words, an uploaded file,
    whose path in the server's uploads directory is of no use to them (upload it again). The
    API's input_source tells which."""
    if pipeline["input_source"] == "upload":
        return f"uploaded {pipeline['input_format']} file"
    if pipeline["input_source"] == "path":
        return f"{pipeline['input_path']} ({pipeline['input_format']})"
    return "generated"


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


def progress(
    pipeline: dict[str, Any], run: dict[str, Any], *, spinner: str | None, width: int
) -> Group:
    """What `--wait` keeps redrawing: the pipeline and run on one line, then the stages."""
    now = datetime.now(UTC)
    title = Text(f"pipeline {pipeline['id']} “{pipeline['name']}” · ", style="bold")
    title.append_text(run_summary(run, now))
    return Group(title, stages_table(run, now=now, spinner=spinner, width=width))


def pipelines_table(items: list[dict[str, Any]], *, width: int = 240) -> Table:
    """The list; in a narrow terminal (`width`) the least needed columns go first, never the ids."""
    now = datetime.now(UTC)
    rows = []
    for item in items:
        run = item["latest_run"]
        rows.append(
            {
                "id": str(item["id"]),
                "name": item["name"],
                "status": status(item["status"]),
                "records": count(item["record_count"]),
                "run": str(run["id"]) if run else "",
                "created (UTC)": timestamp(item["created_at"]),
                "duration": duration(elapsed(run, now)) if run else "",
            }
        )
    return _fitted(
        rows,
        width,
        right={"id", "records", "run", "duration"},
        fold="name",
        drop=("duration", "created (UTC)", "run", "records"),
    )


def _cells(cell: str | Text | Spinner) -> int:
    """The columns `cell` takes; a spinner's: its widest frame, a space, its text."""
    if isinstance(cell, Spinner):
        frames = max(Text(frame).cell_len for frame in cell.frames)
        return frames + 1 + _cells(cast(Text, cell.text))
    return cell.cell_len if isinstance(cell, Text) else Text(cell).cell_len


def _fitted(
    rows: list[dict[str, Any]],
    width: int,
    *,
    right: set[str],
    fold: str,
    drop: tuple[str, ...],
    fold_min: int = 8,
) -> Table:
    """A table of `rows` (dicts of one shape) whose columns in `drop` go, in that order, until
    the widest cells fit in `width`; the `fold` column wraps and takes what is left (at least
    `fold_min` characters, or its title), the others are never cut."""
    names = list(rows[0]) if rows else []

    def cell_width(name: str) -> int:
        if name == fold:
            return max(fold_min, len(name))
        return max(_cells(name), *(_cells(row[name]) for row in rows))

    for name in drop:
        if sum(cell_width(n) + 3 for n in names) + 1 <= width:
            break
        names.remove(name)
    table = Table(box=box.ROUNDED)
    for name in names:
        table.add_column(
            name,
            justify="right" if name in right else "left",
            no_wrap=name != fold,
            overflow="fold" if name == fold else "ellipsis",
            min_width=cell_width(name),
        )
    for row in rows:
        table.add_row(*(row[name] for name in names))
    return table


def runs_table(runs: list[dict[str, Any]], *, width: int = 240) -> Table:
    """Every run; in a narrow terminal (`width`) the least needed columns go first."""
    now = datetime.now(UTC)
    rows = [
        {
            "run": str(run["id"]),
            "status": status(run["status"]),
            "created (UTC)": timestamp(run["created_at"]),
            "duration": duration(elapsed(run, now)),
            "processed": count(run["records_processed"]),
            "rejected": count(run["records_rejected"]),
            "error": one_line(run["error"], style="red"),
        }
        for run in runs
    ]
    return _fitted(
        rows,
        width,
        right={"run", "duration", "processed", "rejected"},
        fold="error",
        drop=("rejected", "processed", "duration", "created (UTC)"),
    )


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
