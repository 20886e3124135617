"""A finished run's directory gone before retention could have removed it (PIPELINE_DATA_DIR
lost, not mounted, or pointed elsewhere): the 404 and the dashboard say the files are missing and
where they were looked for, not that retention removed them."""

import shutil
from datetime import timedelta

import httpx
import pytest

from app.models import Status, utcnow
from app.pipeline.store import RunFiles, runs_dir
from tests.conftest import SetSetting
from tests.support.html import parse
from tests.support.rows import add_pipeline, add_run, done

STAGES = {
    name: done(1.0, 10, 10) for name in ("generate", "ingest", "process", "transform", "export")
}


@pytest.fixture(autouse=True)
def no_run_files() -> None:
    """Run ids restart with every test's database: start without any run directory."""
    shutil.rmtree(runs_dir(), ignore_errors=True)


async def _said(client: httpx.AsyncClient, pipeline_id: int, run_id: int) -> tuple[str, str]:
    """What the download's 404 and the dashboard say of the run's files."""
    output = await client.get(f"/api/pipelines/{pipeline_id}/runs/{run_id}/output")
    assert output.status_code == 404
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    return output.json()["detail"], page.by_id("files-removed").text


async def test_a_run_completed_a_minute_ago_has_its_files_missing_not_removed(
    client: httpx.AsyncClient,
) -> None:
    pipeline_id = await add_pipeline("lost volume")
    ended = utcnow() - timedelta(minutes=1)
    run_id = await add_run(pipeline_id, Status.COMPLETED, STAGES, completed_at=ended)
    missing = (
        f"has no files: they are missing from {RunFiles.for_run(run_id).root}, not removed by "
        f"retention (it ended {ended:%Y-%m-%d %H:%M} UTC, within PIPELINE_RETENTION_DAYS=30); "
        "check that PIPELINE_DATA_DIR is, in every process, the directory its worker wrote to, "
        "and that its volume is mounted"
    )
    assert await _said(client, pipeline_id, run_id) == (
        f"run {run_id} of pipeline {pipeline_id} {missing}",
        f"Run {run_id} {missing}.",
    )


async def test_with_retention_off_no_run_is_said_to_be_removed_by_it(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    setting("PIPELINE_RETENTION_DAYS", "0")
    pipeline_id = await add_pipeline("kept for ever")
    ended = utcnow() - timedelta(days=400)
    run_id = await add_run(pipeline_id, Status.COMPLETED, STAGES, completed_at=ended)
    missing = (
        f"has no files: they are missing from {RunFiles.for_run(run_id).root}, not removed by "
        "retention (PIPELINE_RETENTION_DAYS=0 keeps every run's files); check that "
        "PIPELINE_DATA_DIR is, in every process, the directory its worker wrote to, and that its "
        "volume is mounted"
    )
    assert await _said(client, pipeline_id, run_id) == (
        f"run {run_id} of pipeline {pipeline_id} {missing}",
        f"Run {run_id} {missing}.",
    )


async def test_a_run_ended_before_the_retention_period_had_its_files_removed(
    client: httpx.AsyncClient, setting: SetSetting
) -> None:
    setting("PIPELINE_RETENTION_DAYS", "2")
    pipeline_id = await add_pipeline("old")
    ended = utcnow() - timedelta(days=2, minutes=1)
    run_id = await add_run(pipeline_id, Status.COMPLETED, STAGES, completed_at=ended)
    removed = "has no files any more: they were removed (PIPELINE_RETENTION_DAYS)"
    assert await _said(client, pipeline_id, run_id) == (
        f"run {run_id} of pipeline {pipeline_id} {removed}",
        f"Run {run_id} {removed}.",
    )


async def test_a_failed_run_that_wrote_files_has_them_missing_not_never_written(
    client: httpx.AsyncClient,
) -> None:
    """Its ingest stage ran (the rejects file was written): the 404 said "it failed before
    writing any file" where the dashboard said the files were missing."""
    pipeline_id = await add_pipeline("failed in process")
    ended = utcnow() - timedelta(minutes=1)
    stages = {"generate": STAGES["generate"], "ingest": STAGES["ingest"]}
    run_id = await add_run(pipeline_id, Status.FAILED, stages, completed_at=ended, error="boom")
    missing = (
        f"has no files: they are missing from {RunFiles.for_run(run_id).root}, not removed by "
        f"retention (it ended {ended:%Y-%m-%d %H:%M} UTC, within PIPELINE_RETENTION_DAYS=30); "
        "check that PIPELINE_DATA_DIR is, in every process, the directory its worker wrote to, "
        "and that its volume is mounted"
    )
    rejects = await client.get(f"/api/pipelines/{pipeline_id}/runs/{run_id}/rejects")
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    assert (rejects.status_code, rejects.json()["detail"], page.by_id("files-removed").text) == (
        404,
        f"run {run_id} of pipeline {pipeline_id} {missing}",
        f"Run {run_id} {missing}.",
    )
