"""Commands that start and follow runs: run, trigger, retry, watch, list, show."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import typer
from rich.text import Text

from app.cli import render, watch
from app.cli.base import (
    IntervalOption,
    JsonOption,
    PipelineId,
    TimeoutOption,
    WaitOption,
    api,
    command,
    print_json,
    stdout,
)
from app.cli.client import Api, CliError, ExitCode, idempotency_key
from app.cli.create import NewPipeline, create_pipeline, new_pipeline_options


@command()
@new_pipeline_options
def run(
    ctx: typer.Context,
    new: NewPipeline,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    interval: IntervalOption = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Create a pipeline and start its first run (--wait: follow it live).

    With --wait it exits 0 when the run completes and 1 when it fails or is cancelled.
    `pipeline create` takes the same options and does not start a run.
    """
    client = api(ctx)
    pipeline = create_pipeline(client, new, trigger=True)
    run = pipeline["latest_run"]
    if not as_json:
        line = Text(f"pipeline {pipeline['id']} “{pipeline['name']}” created; run {run['id']} ")
        line.append_text(render.status(run["status"]))
        stdout().print(line, soft_wrap=True)
        if run["prefect_flow_run_url"]:
            stdout().print(f"Prefect flow run: {run['prefect_flow_run_url']}", soft_wrap=True)
    if wait:
        watch.finish(
            client, pipeline["id"], run["id"], as_json=as_json, interval=interval, timeout=timeout
        )
    elif as_json:
        print_json(pipeline)
    else:
        stdout().print(f"follow it: pipeline watch {pipeline['id']}")


def _started(
    client: Api,
    started: dict[str, Any],
    *,
    wait: bool,
    as_json: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """Report a run that trigger or retry started; with `wait`, follow it to its end."""
    pipeline_id, run_id = started["pipeline_id"], started["run_id"]
    if not as_json:
        console = stdout()
        console.print(f"pipeline {pipeline_id}: run {run_id} started")
        console.print(f"Prefect flow run: {started['prefect_flow_run_url']}", soft_wrap=True)
    if wait:
        watch.finish(
            client, pipeline_id, run_id, as_json=as_json, interval=interval, timeout=timeout
        )
    elif as_json:
        print_json(started)
    else:
        stdout().print(f"follow it: pipeline watch {pipeline_id}")


@command()
def trigger(
    ctx: typer.Context,
    pipeline_id: PipelineId,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    interval: IntervalOption = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Start a new run of a pipeline (--wait: follow it live).

    With --wait it exits 0 when the run completes and 1 when it fails or is cancelled.
    """
    client = api(ctx)
    started = client.post(f"/api/pipelines/{pipeline_id}/trigger", headers=idempotency_key())
    _started(client, started, wait=wait, as_json=as_json, interval=interval, timeout=timeout)


@command()
def retry(
    ctx: typer.Context,
    pipeline_id: PipelineId,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    interval: IntervalOption = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Start a new run of a failed or cancelled pipeline (--wait: follow it live).

    Any other pipeline is refused (exit 4). With --wait it exits 0 when the run completes and 1
    when it fails or is cancelled.
    """
    client = api(ctx)
    started = client.post(f"/api/pipelines/{pipeline_id}/retry", headers=idempotency_key())
    _started(client, started, wait=wait, as_json=as_json, interval=interval, timeout=timeout)


@command("watch")
def watch_(
    ctx: typer.Context,
    pipeline_id: PipelineId,
    timeout: TimeoutOption = None,
    interval: IntervalOption = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Follow a pipeline's latest run live until it ends.

    Exits 0 when the run completes and 1 when it fails or is cancelled.
    """
    client = api(ctx)
    pipeline = client.get(f"/api/pipelines/{pipeline_id}")
    if pipeline["latest_run"] is None:
        raise CliError(
            f"pipeline {pipeline_id} has not run yet; start it with `pipeline trigger {pipeline_id}`",
            ExitCode.REFUSED,
        )
    run_id = pipeline["latest_run"]["id"]
    watch.finish(client, pipeline_id, run_id, as_json=as_json, interval=interval, timeout=timeout)


Status = Literal["created", "pending", "running", "completed", "failed", "cancelled"]


@command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        Status | None, typer.Option(help="Only pipelines whose latest run has this status.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Pipelines per page.", min=1, max=100)] = 20,
    page: Annotated[int, typer.Option(help="Which page, newest first.", min=1)] = 1,
    as_json: JsonOption = False,
) -> None:
    """Pipelines, newest first, with their latest run's status."""
    params: dict[str, Any] = {"page": page, "page_size": limit}
    if status:
        params["status"] = status
    body = api(ctx).get("/api/pipelines", **params)
    if as_json:
        print_json(body)
        return
    console = stdout()
    items = body["items"]
    if not items:
        whose = f" whose latest run is {status}" if status else ""
        if body["total"]:  # past the last page
            console.print(f"no pipelines on page {page}; there are {body['total']}{whose}")
        elif status:
            console.print(f"no pipelines{whose}")
        else:
            console.print("no pipelines yet; create one with: pipeline run --records 1000 --wait")
        return
    console.print(render.pipelines_table(items, width=console.width))
    shown = (page - 1) * limit + len(items)
    more = f"; next: --page {page + 1}" if shown < body["total"] else ""
    console.print(f"{len(items)} of {body['total']} pipeline(s), newest first{more}")


@command()
def show(ctx: typer.Context, pipeline_id: PipelineId, as_json: JsonOption = False) -> None:
    """A pipeline: its latest run's stages, then its runs (the newest 100)."""
    client = api(ctx)
    pipeline = client.get(f"/api/pipelines/{pipeline_id}")
    runs = client.get(f"/api/pipelines/{pipeline_id}/runs", page_size=watch.PAGE_SIZE)
    if as_json:
        print_json({"pipeline": pipeline, "runs": runs["items"]})
        return
    console = stdout()
    title = Text(f"pipeline {pipeline['id']} “{pipeline['name']}” · ", style="bold")
    title.append_text(render.status(pipeline["status"]))
    console.print(title)
    records = f"{render.count(pipeline['record_count'])} ({render.source(pipeline)})"
    console.print(f"  records   {records}", soft_wrap=True)
    if pipeline["description"]:
        console.print(f"  about     {pipeline['description']}", soft_wrap=True)
    console.print(f"  created   {render.timestamp(pipeline['created_at'])} UTC")
    run = pipeline["latest_run"]
    if run is None:
        console.print("  not run yet")
        return
    now = datetime.now(UTC)
    console.print(Text("  latest    ").append_text(render.run_summary(run, now)))
    if run["prefect_flow_run_url"]:
        console.print(f"  Prefect   {run['prefect_flow_run_url']}", soft_wrap=True)
    if run["output_file"]:  # the server's path: what another machine can use instead
        console.print(f"  results   pipeline download {pipeline['id']}", soft_wrap=True)
    if run["error"]:
        console.print(Text(f"  error     {run['error']}", style="red"), soft_wrap=True)
    console.print(render.stages_table(run, now=now, width=console.width))
    shown = len(runs["items"])
    newest = f"the newest {shown} of {runs['total']}" if shown < runs["total"] else runs["total"]
    console.print(f"runs ({newest}, newest first)")
    console.print(render.runs_table(runs["items"], width=console.width))
