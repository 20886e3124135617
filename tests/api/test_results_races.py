"""Downloads racing a DELETE of their pipeline (or retention): a whole file or a 404 that says
why, never a 500; and HEAD, which download tools send first."""

import asyncio
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from app.api import results
from app.pipeline.store import RunFiles
from tests.api import test_results
from tests.api.test_results import CSV_OUTPUT

completed, no_run_files = test_results.completed, test_results.no_run_files  # its fixtures

GONE = (
    "run 1 of pipeline 1: its files were removed while being read (the pipeline was deleted, "
    "or retention removed them)"
)


async def test_a_run_directory_removed_mid_download_still_serves_the_whole_file(
    client: httpx.AsyncClient, completed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the response is on its way, the directory goes: the file is served by a link."""
    pinned = results._pinned

    def pin_then_delete(target: Path) -> Path:
        link = pinned(target)
        shutil.rmtree(RunFiles.for_run(completed).root)
        return link

    monkeypatch.setattr(results, "_pinned", pin_then_delete)
    response = await client.get(f"/api/pipelines/1/runs/{completed}/output?format=csv")
    assert (response.status_code, response.text) == (200, CSV_OUTPUT)
    assert list((RunFiles.for_run(completed).root.parent.parent / "serving").iterdir()) == []


@pytest.mark.parametrize("path", ["output?format=csv", "output", "summary"])
async def test_a_run_directory_removed_before_the_read_is_a_404(
    client: httpx.AsyncClient, completed: int, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Found, then gone before the conversion or the read: once a 500."""
    converted, read_parquet = results.converted, results.pl.read_parquet

    def gone_first(read):  # type: ignore[no-untyped-def]
        def read_after_delete(source: Path, *args: object) -> object:
            shutil.rmtree(RunFiles.for_run(completed).root, ignore_errors=True)
            return read(source, *args)

        return read_after_delete

    monkeypatch.setattr(results, "converted", gone_first(converted))
    monkeypatch.setattr(results.pl, "read_parquet", gone_first(read_parquet))
    response = await client.get(f"/api/pipelines/1/runs/{completed}/{path}")
    assert (response.status_code, response.json()) == (404, {"message": GONE, "detail": GONE})


async def test_head_tells_the_size_without_the_body(
    client: httpx.AsyncClient, completed: int
) -> None:
    response = await client.head(f"/api/pipelines/1/runs/{completed}/output?format=csv")
    assert (response.status_code, response.content) == (200, b"")
    assert int(response.headers["content-length"]) == len(CSV_OUTPUT.encode())


async def test_concurrent_first_downloads_convert_once(
    client: httpx.AsyncClient, completed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight first CSV downloads at once: one conversion, eight whole files. The conversion is
    held until all eight requests have asked for the file, the seven others while it runs (a
    conversion timed to last 0.2 s let requests that came later under load find results.csv
    made, and the test passed without any overlap)."""
    convert, converted_once = results._convert, results.converted_once
    conversions: list[str] = []
    asked: list[Path] = []
    all_asked, converting, go = asyncio.Event(), asyncio.Event(), threading.Event()
    loop = asyncio.get_running_loop()

    def held(source: Path, target: Path, fmt: results.Format) -> Path:
        conversions.append(target.name)
        loop.call_soon_threadsafe(converting.set)
        go.wait(30)  # a conversion of a large file, until every request has asked
        return convert(source, target, fmt)

    async def overlap() -> None:
        await all_asked.wait()
        await converting.wait()

    async def counted(source: Path, fmt: results.Format) -> Path:
        asked.append(source)
        if len(asked) == 8:
            all_asked.set()
        return await converted_once(source, fmt)

    monkeypatch.setattr(results, "_convert", held)
    monkeypatch.setattr(results, "converted_once", counted)
    url = f"/api/pipelines/1/runs/{completed}/output?format=csv"
    downloads = asyncio.gather(*(client.get(url) for _ in range(8)))
    seen = asyncio.create_task(overlap())
    await asyncio.wait([seen, downloads], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    seen.cancel()
    overlapped = (len(asked), list(conversions))  # before the conversion may end
    go.set()
    responses = await downloads
    assert overlapped == (8, ["results.csv"]), "the eight requests did not overlap one conversion"
    assert [(r.status_code, r.text) for r in responses] == [(200, CSV_OUTPUT)] * 8
    assert conversions == ["results.csv"]
