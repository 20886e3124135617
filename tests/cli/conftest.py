"""The CLI in-process against the real app on the test's database (SQLite and PostgreSQL).

The CLI is synchronous and runs in a worker thread; its HTTP requests cross back to the test's
event loop, where the app, its database engine and the fixtures live.
"""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.main import create_app
from app.pipeline import run_logs
from app.pipeline.run_logs import Cancelled, RunLog
from app.pipeline.store import runs_dir
from tests.support.served import serve_app

API_URL = "http://cli.test"
T = TypeVar("T")
# a plain 100-column terminal-less output, whatever the machine running the tests has set
CLI_ENV: dict[str, str | None] = {
    "COLUMNS": "100",
    "PIPELINE_API_URL": API_URL,
    "PIPELINE_API_KEY": None,
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "NO_COLOR": "1",
}


class AppTransport(httpx.BaseTransport):
    """Sends each request of the CLI's (sync) client to the app on the test's event loop."""

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self.asgi = httpx.ASGITransport(app=app)
        self.loop = loop
        self.sent: list[httpx.Request] = []  # every request, in order
        # called in the CLI's thread before each request reaches the app: may change the
        # database meanwhile (`on_loop`), answer instead of the app, or raise as a client would
        self.before: Callable[[httpx.Request], httpx.Response | None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a multipart upload becomes bytes the ASGI transport can send
        self.sent.append(request)
        if self.before is not None and (answer := self.before(request)) is not None:
            return answer
        return self.on_loop(self._send(request))

    def on_loop(self, work: Awaitable[T]) -> T:
        """`work` run on the test's event loop, from the CLI's thread."""

        async def run() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
async def transport(database: str) -> AppTransport:
    """The app in-process on the test's database, as the CLI's HTTP transport."""
    return AppTransport(create_app(), asyncio.get_running_loop())


@pytest.fixture
async def cli(transport: AppTransport) -> Cli:
    """`await cli("list", "--json")`: the `pipeline` command against the app in-process
    (`input=`: what a person types at its prompts)."""

    def factory(base_url: str, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers=headers, transport=transport)

    async def invoke(
        *args: str, env: dict[str, str | None] | None = None, input: str | None = None
    ) -> Result:
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli_app,
            list(args),
            obj=factory,
            env={**CLI_ENV, **(env or {})},
            input=input,
            catch_exceptions=False,
        )
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
async def served(database: str) -> AsyncIterator[str]:
    """The app over HTTP (uvicorn, in this event loop) on the test's database, for the installed
    command in a subprocess; its base URL."""
    async with serve_app() as url:
        yield url


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """For `pipeline download`: the command runs in an empty directory, with a umask of 022; run
    ids restart with every test's database, so no run directory is left from another test."""
    shutil.rmtree(runs_dir(), ignore_errors=True)
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    mask = os.umask(0o022)
    yield work
    os.umask(mask)


@dataclass(frozen=True)
class LogRead:
    """One read of a flow run's log lines that the API asked of Prefect."""

    flow_run_id: str
    offset: int
    limit: int
    cancelled: Cancelled | None  # the run's row says it was cancelled (app/api/logs.py)


# a flow run's whole log at the time of a read (it may change the database meanwhile)
LogNow = Callable[[LogRead], Awaitable[Sequence[RunLog]]]
PrefectLogs = Callable[[Mapping[str, Sequence[RunLog]] | LogNow], list[LogRead]]


@pytest.fixture
def prefect_logs(monkeypatch: pytest.MonkeyPatch) -> PrefectLogs:
    """`reads = prefect_logs(lines)`: Prefect's log lines of flow runs as the API reads them,
    `lines` by flow run id, or a LogNow for a log that changes from read to read; each read is
    added to `reads` (before `lines` is asked) and gets its page of the log."""

    def fake(lines: Mapping[str, Sequence[RunLog]] | LogNow) -> list[LogRead]:
        reads: list[LogRead] = []

        async def read_run_logs(
            flow_run_id: str,
            *,
            limit: int,
            tail: bool = False,
            offset: int = 0,
            cancelled: Cancelled | None = None,
        ) -> list[RunLog]:
            read = LogRead(flow_run_id, offset, limit, cancelled)
            reads.append(read)
            whole = lines[flow_run_id] if isinstance(lines, Mapping) else await lines(read)
            if tail:  # the newest `limit` after the newest `offset`, oldest first
                end = max(len(whole) - offset, 0)
                return list(whole[max(end - limit, 0) : end])
            return list(whole[offset : offset + limit])

        monkeypatch.setattr(run_logs, "read_run_logs", read_run_logs)
        return reads

    return fake
