"""The retention sweep removes what a cancelled run's flow-run process left when it was killed
before it could (app/pipeline/reconcile/cancelled_files.py): a 20M-record run cancelled in ingest, whose
Polars query outlived the 5 s its process gets after SIGTERM, kept raw/ and an 874 MB
ingested.parquet for PIPELINE_RETENTION_DAYS, while a cancelled run keeps only its rejects file.

Real rows, and run directories written by the stages' own functions."""

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.models import Status, utcnow
from app.pipeline import work
from app.pipeline.reconcile import cancelled_files, retention
from app.pipeline.reconcile.cancelled_files import CANCELLED_GRACE
from app.pipeline.reconcile.retention import Sweep, sweep_runs
from app.pipeline.store import RunFiles, runs_dir
from app.pipeline.transient import is_transient
from tests.conftest import SetSetting
from tests.support.rows import add_pipeline, add_run

INPUT = (
    "id,name,category,value,quantity,is_active,created_at\n"
    "1,a,A,100,6,true,2026-03-01 12:00:00\n"
    "2,b,Q,10,1,true,2026-03-01 12:00:00\n"
)
REJECTS_CSV = (
    "id,name,category,value,quantity,is_active,created_at,reject_reason\n"
    '2,b,Q,10,1,true,2026-03-01 12:00:00,"unknown category (must be A, B, C or D)"\n'
)
# what a process killed in the process stage leaves: generate's and ingest's files, and the
# process stage's file half-written
LEFT = [".processed.parquet.tmp", "ingested.parquet", "raw/part-00000.parquet", "rejects.parquet"]
LOG = (
    "retention: removed the files of cancelled runs {}, all but their rejects files (left by "
    "flow-run processes killed before they could remove them)"
)


@pytest.fixture(autouse=True)
def no_run_files() -> None:
    """Run ids restart with every test's database: start without any run directory."""
    shutil.rmtree(runs_dir(), ignore_errors=True)


def _killed_in_process_stage(run_id: int, tmp_path: Path, *, changed: datetime) -> RunFiles:
    """The run's directory as its process left it, every file last changed at `changed`."""
    source = tmp_path / f"input-{run_id}.csv"
    source.write_text(INPUT)
    files = RunFiles.for_run(run_id)
    work.generate(
        files, record_count=0, seed=1, batch_rows=10, source=work.InputSource(source, "csv")
    )
    work.ingest(files)
    (files.root / ".processed.parquet.tmp").write_bytes(b"PAR1")
    for path in [files.root, *files.root.rglob("*")]:
        os.utime(path, (changed.timestamp(), changed.timestamp()))
    return files


def _files(files: RunFiles) -> list[str]:
    return sorted(str(p.relative_to(files.root)) for p in files.root.rglob("*") if p.is_file())


async def _run(pipeline_id: int, status: Status, tmp_path: Path, *, ended: datetime) -> int:
    error = "cancelled through the API" if status is Status.CANCELLED else None
    final = {"completed_at": ended} if status.is_final else {}
    run_id = await add_run(pipeline_id, status, {}, created_at=ended, error=error, **final)
    _killed_in_process_stage(run_id, tmp_path, changed=ended)
    return run_id


async def test_a_cancelled_run_killed_mid_stage_keeps_only_its_rejects_file(
    client: httpx.AsyncClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long_ago = utcnow() - CANCELLED_GRACE - timedelta(minutes=1)
    pipeline_id = await add_pipeline("big2", record_count=20_000_000)
    cancelled = await _run(pipeline_id, Status.CANCELLED, tmp_path, ended=long_ago)
    failed = await _run(pipeline_id, Status.FAILED, tmp_path, ended=long_ago)
    running = await _run(pipeline_id, Status.RUNNING, tmp_path, ended=long_ago)
    just_cancelled = await _run(pipeline_id, Status.CANCELLED, tmp_path, ended=utcnow())
    every = (cancelled, failed, running, just_cancelled)
    assert [_files(RunFiles.for_run(run_id)) for run_id in every] == [LEFT] * 4

    with caplog.at_level("INFO", logger="app.pipeline.reconcile.retention"):
        assert await sweep_runs() == Sweep(cleared=[cancelled])
    assert caplog.messages == [LOG.format(cancelled)]
    assert _files(RunFiles.for_run(cancelled)) == ["rejects.parquet"]
    # a failed run keeps everything to be looked at; a running one is never touched; a run
    # cancelled moments ago may still have a process writing there
    assert [_files(RunFiles.for_run(run_id)) for run_id in every[1:]] == [LEFT] * 3

    # again: nothing more to remove, nothing said
    caplog.clear()
    with caplog.at_level("INFO", logger="app.pipeline.reconcile.retention"):
        assert await sweep_runs() == Sweep()
    assert caplog.messages == []

    # what it serves is still there, and what it never served is still refused as before
    url = f"/api/pipelines/{pipeline_id}/runs/{cancelled}"
    rejects = await client.get(f"{url}/rejects", params={"format": "csv"})
    assert (rejects.status_code, rejects.text) == (200, REJECTS_CSV)
    output = await client.get(f"{url}/output")
    assert (output.status_code, output.json()["message"]) == (
        404,
        f"run {cancelled} of pipeline {pipeline_id} has no output: it was cancelled "
        "(cancelled through the API)",
    )

    # the run cancelled moments ago, once its grace has passed as well
    later = utcnow() + CANCELLED_GRACE + timedelta(seconds=1)
    assert await sweep_runs(now=later) == Sweep(cleared=[just_cancelled])
    assert _files(RunFiles.for_run(just_cancelled)) == ["rejects.parquet"]


async def test_a_cancelled_runs_directory_still_being_written_is_left_for_a_later_sweep(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A process nobody signalled (its worker was gone at the cancel) writes on until its stage
    ends: a part written a minute ago in raw/ keeps the directory, however old the cancel."""
    pipeline_id = await add_pipeline("unsignalled")
    an_hour_ago = utcnow() - timedelta(hours=1)
    run_id = await _run(pipeline_id, Status.CANCELLED, tmp_path, ended=an_hour_ago)
    part = RunFiles.for_run(run_id).raw / "part-00000.parquet"
    written = (utcnow() - timedelta(minutes=1)).timestamp()
    os.utime(part, (written, written))

    assert await sweep_runs() == Sweep()
    assert _files(RunFiles.for_run(run_id)) == LEFT
    later = utcnow() + CANCELLED_GRACE
    assert await sweep_runs(now=later) == Sweep(cleared=[run_id])
    assert _files(RunFiles.for_run(run_id)) == ["rejects.parquet"]


async def test_a_cancelled_run_is_cleared_whatever_the_retention_settings(
    client: httpx.AsyncClient, tmp_path: Path, setting: SetSetting
) -> None:
    """`0` days with intermediates kept skipped the run directories altogether: the process's own
    clean-up (app/pipeline/stage_stop.py) heeds neither setting."""
    setting("PIPELINE_RETENTION_DAYS", "0")
    setting("PIPELINE_KEEP_INTERMEDIATES", "true")
    pipeline_id = await add_pipeline("kept")
    long_ago = utcnow() - timedelta(days=400)
    run_id = await _run(pipeline_id, Status.CANCELLED, tmp_path, ended=long_ago)
    completed = await _run(pipeline_id, Status.COMPLETED, tmp_path, ended=long_ago)
    assert await sweep_runs() == Sweep(cleared=[run_id])
    assert _files(RunFiles.for_run(run_id)) == ["rejects.parquet"]
    assert _files(RunFiles.for_run(completed)) == LEFT


async def test_a_sweep_the_database_does_not_answer_removes_nothing(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's status is read first: unread, its files stay, and the error is one the
    watchdog's loop keeps quiet about and sweeps again after (tests/unit/test_watchdog.py)."""
    pipeline_id = await add_pipeline("outage")
    long_ago = utcnow() - CANCELLED_GRACE - timedelta(minutes=1)
    run_id = await _run(pipeline_id, Status.CANCELLED, tmp_path, ended=long_ago)

    async def unreachable(ids: list[int]) -> dict[int, object]:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(retention, "_runs", unreachable)
    with pytest.raises(ConnectionRefusedError) as raised:
        await sweep_runs()
    assert is_transient(raised.value)
    assert _files(RunFiles.for_run(run_id)) == LEFT


async def test_a_directory_that_cannot_be_cleared_is_said_once_and_the_sweep_goes_on(
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One run whose directory raised (PermissionError: root cannot be made to meet one here)
    stopped the whole pass, every run after it unswept, and the error logged every minute."""
    long_ago = utcnow() - CANCELLED_GRACE - timedelta(minutes=1)
    pipeline_id = await add_pipeline("big2")
    stuck = await _run(pipeline_id, Status.CANCELLED, tmp_path, ended=long_ago)
    after = await _run(pipeline_id, Status.CANCELLED, tmp_path, ended=long_ago)
    clear = cancelled_files.keep_only_rejects

    def refused(files: RunFiles) -> None:
        if files.root == RunFiles.for_run(stuck).root:
            raise PermissionError(13, "Permission denied", str(files.root / "raw"))
        clear(files)

    monkeypatch.setattr(cancelled_files, "keep_only_rejects", refused)
    monkeypatch.setattr(cancelled_files, "_SAID", set())  # run ids (paths) restart every test
    with caplog.at_level("INFO", logger="app.pipeline"):
        assert await sweep_runs() == Sweep(cleared=[after])
        assert await sweep_runs() == Sweep()  # the stuck one again: said no more
    assert caplog.messages == [
        f"retention: cannot clear cancelled run directory {RunFiles.for_run(stuck).root}: "
        f"[Errno 13] Permission denied: '{RunFiles.for_run(stuck).root / 'raw'}'",
        LOG.format(after),
    ]
    assert (_files(RunFiles.for_run(stuck)), _files(RunFiles.for_run(after))) == (
        LEFT,
        ["rejects.parquet"],
    )
