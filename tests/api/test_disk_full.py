"""A full or unwritable PIPELINE_DATA_DIR, on a real 20 MB tmpfs: every API path that writes
there answers 507 (full) or 503 (not writable) naming the directory, the OS error and the fix,
and keeps nothing of the request; a run that fills the disk fails saying how to free space and
leaves the room it took, so the next run completes."""

import errno
import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.logging import disable_run_logger
from sqlalchemy import func, select

from app import service
from app.db import get_sessionmaker
from app.main import create_app
from app.models import Pipeline, PipelineRun, Status
from app.pipeline import work
from app.pipeline.claim import RunRef
from app.pipeline.flows import (
    export_results,
    generate_data,
    ingest_data,
    process_data,
    transform_data,
)
from app.pipeline.status import new_stage_rows
from app.pipeline.store import RunFiles
from tests.conftest import SetSetting
from tests.support.rows import read_run
from tests.support.tmpfs import fill, immutable, read_only, tmpfs

HEADER = "id,name,category,value,quantity,is_active,created_at"
FREE_SPACE = (
    "free space there (delete pipelines you no longer need: their runs' files go with them; "
    "a lower PIPELINE_RETENTION_DAYS removes finished runs sooner) or move PIPELINE_DATA_DIR "
    "to a larger volume"
)
UPLOAD_DIR = "[0-9a-f]{32}"  # each upload's own directory


@pytest.fixture
def data_dir(tmp_path: Path, setting: SetSetting) -> Iterator[Path]:
    with tmpfs(tmp_path / "data") as data:
        setting("PIPELINE_DATA_DIR", str(data))
        yield data


def rows_csv(count: int) -> bytes:
    lines = (f"{i},record-{i},A,10.5,2,true,2026-03-01 12:00:00" for i in range(1, count + 1))
    return "\n".join([HEADER, *lines, ""]).encode()


async def upload(client: httpx.AsyncClient, content: bytes, filename: str) -> httpx.Response:
    files = {"file": (filename, content, "application/octet-stream")}
    return await client.post("/api/pipelines", data={"name": "upload"}, files=files)


async def pipelines() -> int:
    async with get_sessionmaker()() as session:
        return int((await session.execute(select(func.count()).select_from(Pipeline))).scalar_one())


def assert_error(response: httpx.Response, status: int, pattern: str) -> None:
    """The error shape, its message matching `pattern` whole (an upload's directory is random)."""
    body = response.json()
    assert (response.status_code, set(body)) == (status, {"message", "detail"}), response.text
    assert body["detail"] == body["message"]
    assert re.fullmatch(pattern, body["message"]), body["message"]


def out_of_space(data: Path, os_error: str) -> str:
    """The 507's message, around `os_error` (a pattern)."""
    where = re.escape(f"PIPELINE_DATA_DIR ({data}) is out of space (")
    return where + os_error + re.escape(f"); {FREE_SPACE}")


NO_SPACE = re.escape("[Errno 28] No space left on device")


async def test_an_upload_that_fills_the_disk_is_a_507_and_leaves_the_room(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    response = await upload(client, rows_csv(700_000), "big.csv")  # 32 MB
    written = re.escape(f"{data_dir}/uploads/") + UPLOAD_DIR + re.escape("/upload")
    assert_error(response, 507, out_of_space(data_dir, f"{NO_SPACE}: '{written}'"))
    assert (await pipelines(), list((data_dir / "uploads").iterdir())) == (0, [])
    small = await upload(client, rows_csv(3), "small.csv")
    assert (small.status_code, small.json()["record_count"]) == (201, 3)


async def test_an_upload_that_decompresses_past_the_free_space_is_a_507_not_a_bad_file(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    packed = gzip.compress(rows_csv(700_000), compresslevel=1)
    assert len(packed) < 10 << 20  # the upload fits; its decompressed copy does not
    response = await upload(client, packed, "big.csv.gz")
    assert_error(response, 507, out_of_space(data_dir, NO_SPACE))
    assert (await pipelines(), list((data_dir / "uploads").iterdir())) == (0, [])


async def test_an_input_path_whose_scratch_copy_fills_the_disk_is_a_507(
    client: httpx.AsyncClient, data_dir: Path, tmp_path: Path, setting: SetSetting
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "big.csv.gz").write_bytes(gzip.compress(rows_csv(700_000), compresslevel=1))
    setting("PIPELINE_INPUT_DIR", str(inputs))
    response = await client.post(
        "/api/pipelines", json={"name": "daily", "input_path": "big.csv.gz"}
    )
    assert_error(response, 507, out_of_space(data_dir, NO_SPACE))
    assert (await pipelines(), list((data_dir / "tmp").iterdir())) == (0, [])


async def test_an_upload_to_a_read_only_data_dir_is_a_503(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    read_only(data_dir)
    response = await upload(client, rows_csv(3), "small.csv")
    message = (
        f"PIPELINE_DATA_DIR ({data_dir}) is not writable ([Errno 30] Read-only file system: "
        f"'{data_dir}/uploads'); mount it read-write, or point PIPELINE_DATA_DIR at a directory "
        "the service can write"
    )
    assert_error(response, 503, re.escape(message))
    assert await pipelines() == 0


async def test_an_upload_the_service_may_not_write_is_a_503_naming_its_user(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    (data_dir / "uploads").mkdir()
    with immutable(data_dir / "uploads"):
        response = await upload(client, rows_csv(3), "small.csv")
        assert list((data_dir / "uploads").iterdir()) == []
    denied = re.escape(f"[Errno 1] Operation not permitted: '{data_dir}/uploads/") + UPLOAD_DIR
    message = (
        re.escape(f"PIPELINE_DATA_DIR ({data_dir}) is not writable (")
        + denied
        + re.escape(
            "'); let the service's user (uid 0) write to it, or point PIPELINE_DATA_DIR at a "
            "directory the service can write"
        )
    )
    assert_error(response, 503, message)
    assert await pipelines() == 0


async def test_any_other_os_error_stays_a_500(
    database: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A permission error outside PIPELINE_DATA_DIR (an input file's), or a missing file in it,
    is no refused write: a 500 as before, its traceback logged."""
    raised = [
        PermissionError(errno.EACCES, "Permission denied", "/srv/inputs/a.csv"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", str(data_dir / "runs")),
    ]

    async def broken(**_: object) -> None:
        raise raised.pop(0)

    monkeypatch.setattr(service, "list_pipelines", broken)
    transport = httpx.ASGITransport(app=create_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as lenient:
        answers = [await lenient.get("/api/pipelines") for _ in range(2)]
    assert [(r.status_code, r.json()["message"]) for r in answers] == [
        (500, f"internal error ({name}); the service's log has its traceback")
        for name in ("PermissionError", "FileNotFoundError")
    ]


async def _pipeline_with_run(record_count: int) -> RunRef:
    async with get_sessionmaker()() as session:
        pipeline = Pipeline(name="p", record_count=record_count)
        run = PipelineRun(pipeline=pipeline, record_count=record_count, stages=new_stage_rows())
        session.add_all([pipeline, run])
        await session.commit()
        return RunRef(pipeline.id, run.id, record_count)


async def test_a_download_converted_on_a_full_disk_is_a_507_and_leaves_no_part(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    ref = await _pipeline_with_run(10_000)
    files = RunFiles.for_run(ref.run_id)
    work.run_all(files, record_count=10_000, seed=1, batch_rows=10_000)
    async with get_sessionmaker()() as session:
        run = await session.get(PipelineRun, ref.run_id)
        assert run is not None
        run.status = Status.COMPLETED
        await session.commit()
    filler = fill(data_dir)
    path = f"/api/pipelines/{ref.pipeline_id}/runs/{ref.run_id}/output?format=csv"
    response = await client.get(path)
    assert_error(response, 507, out_of_space(data_dir, NO_SPACE))
    assert sorted(p.name for p in files.results.parent.iterdir()) == [
        "results.parquet",
        "summary.parquet",
    ]
    filler.unlink()
    response = await client.get(path)
    assert (response.status_code, response.text.count("\n")) == (200, 10_001)


async def test_a_run_that_fills_the_disk_fails_saying_how_to_free_space_and_the_next_completes(
    data_dir: Path, database: str
) -> None:
    """The stage tasks as the flow runs them (no task retries outside Prefect: its last
    attempt), writing their rows."""
    ref = await _pipeline_with_run(3_000_000)
    files = RunFiles.for_run(ref.run_id)
    with disable_run_logger(), pytest.raises(Exception) as raised:
        await generate_data.fn(ref, files)
    error = (
        f"{type(raised.value).__name__}: PIPELINE_DATA_DIR ({data_dir}) is out of space "
        f"([Errno 28] No space left on device); the run's files were removed; {FREE_SPACE}, "
        "then retry the pipeline"
    )
    run = await read_run(ref.run_id)
    assert (run.status, run.error) == (Status.FAILED, f"generate: {error}")
    assert (run.stages[0].status, run.stages[0].error) == (Status.FAILED, error)
    assert type(raised.value).__name__ == "NoSpaceError"
    assert list(files.root.iterdir()) == []

    after = await _pipeline_with_run(10_000)
    after_files = RunFiles.for_run(after.run_id)
    with disable_run_logger():
        for stage in (generate_data, ingest_data, process_data, transform_data, export_results):
            await stage.fn(after, after_files)
    run = await read_run(after.run_id)
    assert [(s.status, s.records_out) for s in run.stages] == [(Status.COMPLETED, 10_000)] * 5
