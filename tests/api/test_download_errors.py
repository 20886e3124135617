"""A download whose file cannot be read any more once its response has started (a disk error
mid-file), over a real HTTP server: logged as what it is, the client's copy cut short."""

import errno
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import FileResponse

from app.models import Status
from app.pipeline.store import RunFiles, runs_dir
from tests.api.test_results import add_run
from tests.support.served import serve_app
from tests.support.stages import run_stages_on

HEADER = "id,name,category,value,quantity,is_active,created_at\n"
ROWS = 3000  # results.csv of several 64 KiB chunks


class _FailingDisk:
    """The real file, whose reads fail with EIO after the first."""

    def __init__(self, file: Any) -> None:
        self.file, self.reads = file, 0

    async def read(self, size: int) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise OSError(errno.EIO, "Input/output error")
        data: bytes = await self.file.read(size)
        return data


@pytest.fixture
async def api(database: str, tmp_path: Path) -> AsyncIterator[str]:
    """The API over HTTP, with pipeline 1's completed run 1 of ROWS records."""
    shutil.rmtree(runs_dir(), ignore_errors=True)
    source = tmp_path / "input.csv"
    source.write_text(
        HEADER + "".join(f"{i},n{i},A,10,1,true,2026-03-01\n" for i in range(1, ROWS + 1))
    )
    async with serve_app() as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/api/pipelines", json={"name": "p"})
        run_id = await add_run(1, Status.COMPLETED)
        run_stages_on(run_id, source, "csv")
        yield url


async def test_a_disk_error_mid_download_is_logged_naming_the_file(
    api: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """It was logged as Starlette's RuntimeError "Caught handled exception, but response already
    started", naming neither the file nor the error."""
    opened = FileResponse._open_file

    @asynccontextmanager
    async def failing(self: FileResponse) -> AsyncIterator[_FailingDisk]:
        async with opened(self) as file:
            yield _FailingDisk(file)

    async with httpx.AsyncClient(base_url=api) as client:
        await client.get("/api/pipelines/1/runs/1/output", params={"format": "csv"})  # converted
        monkeypatch.setattr(FileResponse, "_open_file", failing)
        caplog.clear()
        with caplog.at_level(logging.ERROR), pytest.raises(httpx.RemoteProtocolError):
            await client.get("/api/pipelines/1/runs/1/output", params={"format": "csv"})
    results = RunFiles.for_run(1).results.with_suffix(".csv").resolve()
    ours = [r.getMessage() for r in caplog.records if r.name == "app.api.downloads"]
    assert ours == [
        f"download of {results} stopped after 65,536 bytes: reading the file failed ([Errno 5] "
        "Input/output error); the client's copy is cut short"
    ]
    assert not [r for r in caplog.records if "response already started" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info]  # no traceback of a RuntimeError
