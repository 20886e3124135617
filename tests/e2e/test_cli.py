"""The installed `pipeline` command against the real stack: runs followed to their end, a real
failure, show, list, logs, cancel and doctor — each through a subprocess, as a person runs it."""

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import next_daily

# The command does not depend on the database backend: the SQLite stack only (tests/cli covers
# the commands against the app on both backends).
pytestmark = pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)

PIPELINE = Path(sys.executable).with_name("pipeline")
STAGES = ["generate", "ingest", "process", "transform", "export"]
DURATION = re.compile(r"\d+\.\d\d s|\d+\.\d s")
NOT_RUN = "not run: an earlier stage failed"
ALL_REJECTED = (
    "RecordsRejectedError: all 3 input records were rejected (unknown category (must be A, B, C or D): 2, null id: 1); the run's "
    "rejects file lists each with its reject_reason"
)
REJECTED_CSV = (
    "id,name,category,value,quantity,is_active,created_at\n"
    "1,a,Z,100,1,true,2026-03-01 12:00:00\n"
    ",b,A,100,1,true,2026-03-01 12:00:00\n"
    "3,c,Q,100,1,true,2026-03-01 12:00:00\n"
)


async def pipeline(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`pipeline ARGS` pointed at the stack, with plain 240-column output."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PIPELINE_API_KEY", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    env.update(
        PIPELINE_API_URL=stack.stack.api_url,
        COLUMNS="240",
        NO_COLOR="1",
        PYTHONIOENCODING="utf-8",
    )
    return await asyncio.to_thread(
        subprocess.run,
        [str(PIPELINE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def stage_rows(output: str) -> list[tuple[str, ...]]:
    """(stage, status, records in, records out, error) of each stage row of a stages table;
    durations are checked for their format."""
    rows = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] in STAGES:
            stage, status, took, records_in, records_out, error = cells
            assert took == "" or DURATION.fullmatch(took), line
            rows.append((stage, status, records_in, records_out, error))
    return rows


async def test_run_wait_shows_the_five_stages_completed(
    stack: RunningStack, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    result = await pipeline(stack, "run", "--records", "1000", "--name", "cli-e2e", "--wait")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    created = re.fullmatch(r"pipeline (\d+) “cli-e2e” created; run (\d+) pending", lines[0])
    assert created, lines[0]
    pipeline_id, run_id = int(created[1]), int(created[2])
    body = (await api.get(f"/api/pipelines/{pipeline_id}")).json()
    flow_run_id = body["latest_run"]["prefect_flow_run_id"]
    assert lines[1] == (
        f"Prefect flow run: http://127.0.0.1:{stack.stack.prefect_port}/runs/flow-run/{flow_run_id}"
    )
    assert re.fullmatch(
        rf"pipeline {pipeline_id} “cli-e2e” · run {run_id} · completed in ({DURATION.pattern}) · "
        r"1,000 processed",
        lines[2],
    ), lines[2]
    assert stage_rows(result.stdout) == [
        (stage, "completed", "1,000", "1,000", "") for stage in STAGES
    ]
    assert re.fullmatch(
        rf"run {run_id} of pipeline {pipeline_id} completed in ({DURATION.pattern}): 1,000 "
        rf"records processed; save them with `pipeline download {pipeline_id}`",
        lines[-1],
    ), lines[-1]
    assert (body["status"], body["latest_run"]["records_processed"]) == ("completed", 1000)

    shown = await pipeline(stack, "show", str(pipeline_id))
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[:2] == [
        f"pipeline {pipeline_id} “cli-e2e” · completed",
        "  records   1,000 (generated)",
    ]
    assert stage_rows(shown.stdout) == stage_rows(result.stdout)

    saved = tmp_path / "results.csv"
    downloaded = await pipeline(
        stack, "download", str(pipeline_id), "--format", "csv", "--output", str(saved)
    )
    assert (downloaded.returncode, downloaded.stdout, downloaded.stderr) == (
        0,
        f"saved {saved} ({saved.stat().st_size:,} bytes)\n",
        "",
    )
    rows = saved.read_text().splitlines()  # the header, then the 1,000 records processed
    assert (rows[0].split(",")[:3], len(rows)) == (["id", "name", "category"], 1001)

    listed = await pipeline(stack, "list", "--status", "completed", "--json")
    assert listed.returncode == 0
    assert pipeline_id in [item["id"] for item in json.loads(listed.stdout)["items"]]

    finished = await pipeline(stack, "cancel", str(pipeline_id))
    assert (finished.returncode, finished.stdout, finished.stderr) == (
        4,
        "",
        f"error: run {run_id} of pipeline {pipeline_id} already completed; only a pending or "
        "running run can be cancelled\n",
    )


async def test_a_failed_run_exits_1_with_its_error(stack: RunningStack, tmp_path: Path) -> None:
    rejected = tmp_path / "rejected.csv"
    rejected.write_text(REJECTED_CSV)
    result = await pipeline(stack, "run", "--file", str(rejected), "--wait")
    assert result.returncode == 1
    created = re.fullmatch(
        r"pipeline (\d+) “rejected.csv” created; run (\d+) pending", result.stdout.splitlines()[0]
    )
    assert created, result.stdout
    pipeline_id, run_id = int(created[1]), int(created[2])
    assert result.stderr == (
        f"error: run {run_id} of pipeline {pipeline_id} failed: ingest: {ALL_REJECTED}\n"
    )
    assert stage_rows(result.stdout) == [
        ("generate", "completed", "3", "3", ""),
        ("ingest", "failed", "3", "0", ALL_REJECTED),
        ("process", "cancelled", "", "", NOT_RUN),
        ("transform", "cancelled", "", "", NOT_RUN),
        ("export", "cancelled", "", "", NOT_RUN),
    ]

    shown = await pipeline(stack, "show", str(pipeline_id))
    assert shown.returncode == 0
    assert f"  error     ingest: {ALL_REJECTED}" in shown.stdout.splitlines()

    unasked = await pipeline(stack, "delete", str(pipeline_id))  # no terminal to ask on
    assert unasked.returncode == 2
    assert "add --yes to delete without a terminal" in unasked.stderr
    deleted = await pipeline(stack, "delete", str(pipeline_id), "--yes")
    assert (deleted.returncode, deleted.stdout) == (0, f"pipeline {pipeline_id} deleted\n")
    gone = await pipeline(stack, "show", str(pipeline_id))
    assert (gone.returncode, gone.stderr) == (4, f"error: pipeline {pipeline_id} not found\n")


async def test_logs_follow_a_run_to_its_end(stack: RunningStack) -> None:
    started = await pipeline(stack, "run", "--records", "1000", "--name", "cli-logs")
    assert started.returncode == 0
    pipeline_id = int(started.stdout.split()[1])
    assert started.stdout.splitlines()[-1] == f"follow it: pipeline watch {pipeline_id}"

    followed = await pipeline(stack, "logs", str(pipeline_id), "--follow", "--interval", "0.5")
    assert (followed.returncode, followed.stderr) == (0, "")
    stage_lines = [
        line.split(" prefect.task_runs  ", 1)[1]
        for line in followed.stdout.splitlines()
        if " prefect.task_runs  stage " in line
    ]
    assert stage_lines == [f"stage {name} completed: 1000 in, 1000 out" for name in STAGES]

    watched = await pipeline(stack, "watch", str(pipeline_id))  # already over: exits at once
    assert watched.returncode == 0
    as_json = await pipeline(stack, "logs", str(pipeline_id), "--json")
    messages = [json.loads(line)["message"] for line in as_json.stdout.splitlines()]
    assert [message for message in messages if message.startswith("stage ")] == stage_lines


async def test_doctor_passes_on_the_healthy_stack(stack: RunningStack) -> None:
    # a stack just started (this test alone) has a worker whose first heartbeat is on its way
    for _ in range(30):
        result = await pipeline(stack, "doctor")
        if result.returncode == 0 or "FAIL  worker " not in result.stdout:
            break
        await asyncio.sleep(1)
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["ok", name]
        for name in (
            "database",
            "migrations",
            "data_dir",
            "prefect_api",
            "work_pool",
            "worker",
            "deployment",
            "stranded_runs",
        )
    ]
    assert lines[-1] == "ready"

    # PREFECT_API_URL mistaken for PIPELINE_API_URL: Prefect's /ready is no readiness report
    mixed_up = await pipeline(stack, "--api-url", stack.stack.prefect_api_url, "doctor")
    assert (mixed_up.returncode, mixed_up.stderr) == (
        4,
        f"error: the API at {stack.stack.prefect_api_url} answered GET /ready with no readiness "
        "checks; is PIPELINE_API_URL the pipeline service (not Prefect's API)?\n",
    )


async def test_schedule_set_show_list_pause_resume_remove(
    stack: RunningStack, api: httpx.AsyncClient
) -> None:
    pipeline_id = (
        await api.post("/api/pipelines", json={"name": "cli-nightly", "record_count": 10})
    ).json()["id"]
    next_six = f"{next_daily(6):%Y-%m-%d %H:%M:%S}"

    neither = await pipeline(stack, "schedule", "set", str(pipeline_id))
    said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", neither.stderr).split())  # out of its usage box
    assert (neither.returncode, said.split(" Error ")[1]) == (
        2,
        "Invalid value for --cron: give exactly one of --cron or --every",
    )
    bad = await pipeline(stack, "schedule", "set", str(pipeline_id), "--cron", "at dawn")
    assert (bad.returncode, bad.stderr) == (
        4,
        "error: --cron: 'at dawn' is not a valid cron expression (five fields: minute hour "
        "day-of-month month day-of-week)\n",
    )

    set_ = await pipeline(stack, "schedule", "set", str(pipeline_id), "--cron", "0 6 * * *")
    assert (set_.returncode, set_.stdout) == (
        0,
        f"pipeline {pipeline_id}: cron 0 6 * * * (UTC); next run: {next_six} UTC\n",
    )
    listed = await pipeline(stack, "schedules")
    assert [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in listed.stdout.splitlines()
        if line.startswith("│")
    ] == [
        ["pipeline", "when", "next run (UTC)"],
        [str(pipeline_id), "cron 0 6 * * * (UTC)", next_six],
    ]

    paused = await pipeline(stack, "schedule", "pause", str(pipeline_id))
    assert paused.stdout == f"pipeline {pipeline_id}: cron 0 6 * * * (UTC); next run: paused\n"
    resumed = await pipeline(stack, "schedule", "resume", str(pipeline_id), "--json")
    assert json.loads(resumed.stdout)["active"] is True
    hourly = await pipeline(stack, "schedule", "set", str(pipeline_id), "--every", "3600")
    assert hourly.stdout.startswith(f"pipeline {pipeline_id}: every 3600 s (UTC); next run: ")

    removed = await pipeline(stack, "schedule", "remove", str(pipeline_id))
    assert (removed.returncode, removed.stdout) == (
        0,
        f"pipeline {pipeline_id}: schedule removed\n",
    )
    gone = await pipeline(stack, "schedule", "show", str(pipeline_id))
    assert (gone.returncode, gone.stderr) == (
        4,
        f"error: pipeline {pipeline_id} has no schedule; set one with pipeline schedule set "
        f"{pipeline_id}\n",
    )
    none = await pipeline(stack, "schedules")
    assert (
        none.stdout == "no schedules; set one with: pipeline schedule set ID --cron '0 6 * * *'\n"
    )
