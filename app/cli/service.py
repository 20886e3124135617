"""Commands that operate the service: logs, cancel, delete, doctor, up."""

import sys
import time
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.text import Text

from app.cli import cancelled, render
from app.cli.base import (
    IntervalOption,
    JsonOption,
    PipelineId,
    RunOption,
    api,
    command,
    json_text,
    print_json,
    stderr,
    stdout,
)
from app.cli.client import PATIENT, Api, CliError, ExitCode

MAX_LOG_LINES = 200  # what GET /api/pipelines/{id}/logs returns at most
LOG_OVERLAP = 50  # lines read again on each poll
FOLLOW_GRACE_SECONDS = 3.0
# A cancelled run's last line, the service's `run N cancelled …`, comes once Prefect has its
# engine's last line, or a minute after the cancel (the API's run_logs.ENGINE_END_GRACE): waited
# for that long, and the grace, from when the run was seen cancelled (after the cancel, on this
# machine's clock, whatever the server's says)
CANCELLED_LINE_WAIT_SECONDS = 60.0 + FOLLOW_GRACE_SECONDS


@command()
def logs(
    ctx: typer.Context,
    pipeline_id: PipelineId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
    run_id: RunOption = None,
    interval: IntervalOption = 1.0,
    as_json: JsonOption = False,
) -> None:
    """The latest run's (or --run's) log lines, as its flow run sent them to Prefect.

    --follow keeps printing new lines until the run ends (a cancelled run's, until the line
    saying it was cancelled: a minute after the cancel at most); --json prints JSON Lines.
    """
    client = api(ctx)
    console = stdout()
    printed: set[str] = set()
    known = 0  # the run's lines read so far, in Prefect's order (by time)
    last_new = datetime.now(UTC)
    ended_at: datetime | None = None  # when the followed run was first seen ended
    latest = client.get(f"/api/pipelines/{pipeline_id}")["latest_run"]
    # the run asked for, or the one that is latest now, followed to its end: a run started
    # meanwhile is not its sequel
    pinned = {"run_id": run_id} if run_id else {"run_id": latest["id"]} if latest else {}
    while True:
        # A page at a time from the last lines read, as long as pages come back full. The last
        # few are read again: a line that reached Prefect late with an earlier time lands among
        # them, and pushes the rest down (printed once, by id).
        start = max(0, known - LOG_OVERLAP)
        page = client.get(f"/api/pipelines/{pipeline_id}/logs", offset=start, **pinned)
        new = [line for line in page if line["id"] not in printed]
        for line in new:
            if as_json:
                typer.echo(json_text(line))
            else:
                console.print(render.log_line(line), soft_wrap=True)
        printed.update(line["id"] for line in new)
        known = max(known, start + len(page))
        if new:
            last_new = datetime.now(UTC)
        if len(page) == MAX_LOG_LINES:
            continue
        if not follow:
            break
        run = _followed(client, pipeline_id, pinned)
        if run is not None and run["status"] in render.FINAL and ended_at is None:
            ended_at = datetime.now(UTC)
        if _settled(run, last_new, printed=printed, ended_at=ended_at):
            break
        time.sleep(interval)
    if not printed and not as_json:
        which = f"run {run_id} of " if run_id else ""
        stderr().print(f"no log lines for {which}pipeline {pipeline_id} yet")


def _followed(client: Api, pipeline_id: int, pinned: dict[str, int]) -> dict[str, Any] | None:
    """The run being followed as it is now (the latest, if there was none when it began)."""
    pipeline = client.get(f"/api/pipelines/{pipeline_id}")
    if not pinned or (pipeline["latest_run"] or {}).get("id") == pinned["run_id"]:
        return cast(dict[str, Any] | None, pipeline["latest_run"])
    return cast(dict[str, Any], client.get(f"/api/pipelines/{pipeline_id}/runs/{pinned['run_id']}"))


def _settled(
    run: dict[str, Any] | None,
    last_new: datetime,
    *,
    printed: Collection[str],
    ended_at: datetime | None,
) -> bool:
    """No run, or a run that ended and has sent no new line for a few seconds: Prefect receives
    a flow run's last lines a moment after it ends; a cancelled run's, once the service's line
    saying so is printed (or has been waited for long enough)."""
    if run is None:
        return True
    if run["status"] not in render.FINAL:
        return False
    now = datetime.now(UTC)
    if run["status"] == "cancelled" and f"run-{run['id']}-cancelled" not in printed:
        waited = now - (ended_at or now)
        return waited.total_seconds() >= CANCELLED_LINE_WAIT_SECONDS
    ended = render.parse_time(run["completed_at"]) or last_new
    quiet = now - max(ended, last_new)
    return quiet.total_seconds() >= FOLLOW_GRACE_SECONDS


@command()
def cancel(ctx: typer.Context, pipeline_id: PipelineId, as_json: JsonOption = False) -> None:
    """Cancel a pipeline's pending or running runs (all of them, if more than one).

    Names each run it cancelled. A finished run cannot be cancelled (exit 4); cancelling a
    cancelled run again is fine. --json prints the API's answer: the newest run it cancelled.
    """
    client = api(ctx)
    others = [] if as_json else cancelled.in_flight(client, pipeline_id)
    run = client.post(f"/api/pipelines/{pipeline_id}/cancel")
    if as_json:
        print_json(run)  # the API's answer: the newest run it cancelled
        return
    run_ids, unread = {run["id"]}, ""
    try:
        if run["status"] == "cancelled":
            run_ids |= cancelled.now_cancelled(client, pipeline_id, set(others) - run_ids)
    except CliError as exc:  # the cancel is done: said, with what could not be checked
        unread = f"{exc.message}; see them with `pipeline show {pipeline_id}`"
    finally:  # Ctrl-C too: what the API said it cancelled, then "interrupted"
        stdout().print(f"{cancelled.runs_text(run_ids)} of pipeline {pipeline_id} {run['status']}")
    if unread:
        stderr().print(
            f"could not read which other runs of pipeline {pipeline_id} were cancelled: {unread}",
            soft_wrap=True,
        )


def _interactive() -> bool:
    """Whether a person can answer a question on stdin."""
    return sys.stdin.isatty()


@command()
def delete(
    ctx: typer.Context,
    pipeline_id: PipelineId,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete without asking (needed without a terminal).")
    ] = False,
) -> None:
    """Delete a pipeline with its runs, their files and its schedule.

    A pending or running run must be cancelled first (exit 4). Prefect keeps its flow runs.
    """
    if not yes:
        if not _interactive():
            raise typer.BadParameter("add --yes to delete without a terminal", param_hint="--yes")
        try:
            sure = typer.confirm(f"Delete pipeline {pipeline_id}, every run of it and their files?")
        except typer.Abort:  # Ctrl-C or Ctrl-D at the prompt: no answer is no
            stdout().print()
            sure = False
        if not sure:  # a question answered, not a failure
            stdout().print(f"pipeline {pipeline_id} not deleted")
            return
    api(ctx).request("DELETE", f"/api/pipelines/{pipeline_id}")
    stdout().print(f"pipeline {pipeline_id} deleted")


@command()
def doctor(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the service is ready to run pipelines; each failed check says its fix.

    The API's GET /ready: database, migrations, Prefect, pool, live worker, deployment, stranded
    runs. Exits 1 when any check fails.
    """
    client = api(ctx)
    body = client.get("/ready", ok={503}, timeout=PATIENT)  # its Prefect check may be slow
    if not (isinstance(body, dict) and {"ready", "checks"} <= body.keys()):
        raise CliError(
            f"the API at {client.url} answered GET /ready with no readiness checks; is "
            "PIPELINE_API_URL the pipeline service (not Prefect's API)?",
            ExitCode.REFUSED,
        )
    if as_json:
        print_json(body)
    else:
        console = stdout()
        for check in body["checks"]:
            mark = Text("ok  ", style="green") if check["ok"] else Text("FAIL", style="bold red")
            console.print(
                mark.append(f"  {check['name']:<14} {check['detail']}", style=""), soft_wrap=True
            )
            if check["fix"]:
                console.print(f"      {'':<14} fix: {check['fix']}", soft_wrap=True)
        failed = sum(not check["ok"] for check in body["checks"])
        console.print("ready" if body["ready"] else f"not ready: {failed} check(s) failed")
    if not body["ready"]:
        raise typer.Exit(ExitCode.RUN_FAILED)


@command()
def up(
    workers: Annotated[int, typer.Option(help="Prefect workers to start.", min=1)] = 1,
    worker_limit: Annotated[int, typer.Option(help="Flow runs at once per worker.", min=1)] = 4,
    prefect_port: Annotated[
        int, typer.Option(help="The Prefect server's port.", min=1, max=65535)
    ] = 4200,
    api_port: Annotated[int, typer.Option(help="The API's port.", min=1, max=65535)] = 8000,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Where the processes' logs go.", show_default="<state dir>/log"),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="The stack's own database, Prefect home, run files and logs; one stack each.",
            show_default="var",
        ),
    ] = None,
) -> None:
    """Start the local stack as `make up` does; Ctrl-C (or `make down`) stops it all.

    Prefect server, migrations, pool and deployment, worker(s) and the API, configured by the
    same environment variables (DATABASE_URL, PIPELINE_DATA_DIR, PREFECT_HOME, ...). Exits 8 when
    the stack does not start; the message names the log to read.
    """
    from app.stack import commands  # only here: every other command starts faster without it

    argv = [
        f"--workers={workers}",
        f"--worker-limit={worker_limit}",
        f"--prefect-port={prefect_port}",
        f"--api-port={api_port}",
    ]
    if log_dir is not None:
        argv.append(f"--log-dir={log_dir}")
    if state_dir is not None:
        argv.append(f"--state-dir={state_dir}")
    commands.main(argv)  # a stack that does not start says why and exits 8 (STACK_FAILED)
