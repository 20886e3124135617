"""Requests that create or change something: each create, trigger and retry carries a new
Idempotency-Key, and a request the API has not answered in time (exit 7) or that Ctrl-C stopped
waiting for (exit 130) is reported as one that may still complete, never as an API that cannot
be reached."""

import json
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun
from sqlalchemy import update
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.db import get_sessionmaker
from app.models import PipelineRun, Status
from app.pipeline import orchestrator
from tests.cli.conftest import API_URL, CLI_ENV, AppTransport, Cli
from tests.support.rows import add_pipeline, add_run

CSV = "id,name,category,value,quantity,is_active,created_at\n1,a,A,10,1,true,2026-01-01\n"


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A Prefect that makes every flow run it is asked for; the keys it was asked with."""
    asked: list[str] = []

    async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        asked.append(key)
        return FlowRun(id=UUID(int=len(asked)), flow_id=UUID(int=99))

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)
    return asked


async def test_each_create_trigger_and_retry_sends_a_new_idempotency_key(
    cli: Cli, transport: AppTransport, prefect: list[str], tmp_path: Path
) -> None:
    """A create, trigger or retry whose answer was lost could only be sent again as a new
    request: a second pipeline, a second run (a retry sent none until it took a key)."""
    await add_run(await add_pipeline("failed"), Status.FAILED, {})
    (tmp_path / "orders.csv").write_text(CSV)
    for args in (
        ["run", "--records", "10"],
        ["run", "--records", "10"],
        ["run", "--file", str(tmp_path / "orders.csv")],
        ["trigger", "2"],
        ["retry", "1"],
    ):
        result = await cli(*args)
        assert (result.exit_code, result.stderr) == (0, ""), args
    posts = [
        (r.url.path, r.headers.get("Idempotency-Key")) for r in transport.sent if r.method == "POST"
    ]
    assert [path for path, _ in posts] == [
        "/api/pipelines",
        "/api/pipelines",
        "/api/pipelines",
        "/api/pipelines/2/trigger",
        "/api/pipelines/1/retry",
    ]
    keys = [key for _, key in posts]
    assert [bool(re.fullmatch(r"[0-9a-f]{32}", key or "")) for key in keys] == [True] * 5
    assert len(set(keys)) == 5
    # the first request sent again, as a retry would: the same pipeline, no second one
    first = transport.sent[0]
    async with httpx.AsyncClient(transport=transport.asgi, base_url=API_URL) as client:
        again = await client.post(
            "/api/pipelines",
            json=json.loads(first.content),
            headers={"Idempotency-Key": first.headers["Idempotency-Key"]},
        )
        total = (await client.get("/api/pipelines")).json()["total"]
        # the retry's run failed too; the retry sent again answers with it, retrying nothing
        retried = (await client.get("/api/pipelines/1")).json()["latest_run"]["id"]
        async with get_sessionmaker()() as session:
            failed = update(PipelineRun).where(PipelineRun.id == retried)
            await session.execute(failed.values(status=Status.FAILED))
            await session.commit()
        repeat = await client.post(
            "/api/pipelines/1/retry", headers={"Idempotency-Key": keys[4] or ""}
        )
    assert (again.json()["id"], total, len(prefect)) == (2, 4, 5)
    assert (repeat.status_code, repeat.json()["run_id"]) == (202, retried)


# each command that writes: its request, and the command that shows whether it took effect
WRITES = {
    ("run", "--records", "5"): ("POST /api/pipelines", "pipeline list"),
    ("trigger", "3"): ("POST /api/pipelines/3/trigger", "pipeline show 3"),
    ("retry", "3"): ("POST /api/pipelines/3/retry", "pipeline show 3"),
    ("cancel", "3"): ("POST /api/pipelines/3/cancel", "pipeline show 3"),
    ("delete", "3", "--yes"): ("DELETE /api/pipelines/3", "pipeline show 3"),
    ("schedule", "set", "3", "--every", "60"): (
        "PUT /api/pipelines/3/schedule",
        "pipeline schedule show 3",
    ),
}


class Unanswered(httpx.BaseTransport):
    """An API that takes each request and never answers: httpx gives up reading its answer."""

    def __init__(self) -> None:
        self.timeouts: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.timeouts.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("timed out", request=request)


def test_an_unanswered_write_may_still_complete_and_says_how_to_check() -> None:
    """It said "did not answer POST /api/pipelines within 30 s" and exit 3, the API unreachable,
    while Prefect's retries (up to ~2 min 14 s) went on and the pipeline was created."""
    transport = Unanswered()

    def factory(base_url: str, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers=headers, transport=transport)

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli_app, list(args), obj=factory, env=CLI_ENV)
        return result.exit_code, result.stdout, result.stderr

    for args, (request, check) in WRITES.items():
        assert invoke(*args) == (
            7,
            "",
            f"error: the API at {API_URL} did not answer {request} within 150 s; the request may "
            f"still complete; check with `{check}`\n",
        ), args
    # doctor waits as long (its Prefect check), and does not send the reader to itself
    assert invoke("doctor") == (
        7,
        "",
        f"error: the API at {API_URL} did not answer GET /ready within 150 s; check its log "
        "(under `make up`: api.log in <STATE_DIR>/log, var/log by default)\n",
    )
    assert invoke("list") == (
        7,
        "",
        f"error: the API at {API_URL} did not answer GET /api/pipelines within 30 s; check its "
        "log (under `make up`: api.log in <STATE_DIR>/log, var/log by default) and "
        "`pipeline doctor`\n",
    )
    patient = {"connect": 30.0, "read": 150.0, "write": 30.0, "pool": 30.0}
    quick = {"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    # cancel reads its runs in flight first (to name each it cancels): unanswered, the cancel
    # is sent all the same
    assert transport.timeouts == [patient] * 3 + [quick] + [patient] * 4 + [quick]


class Interrupted(httpx.BaseTransport):
    """Ctrl-C while the CLI waits for the API's answer to its request."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        raise KeyboardInterrupt


def test_a_write_interrupted_with_ctrl_c_may_still_complete_and_says_how_to_check() -> None:
    """It said "interrupted", nothing more, while the API went on: the pipeline was created, the
    run started, the cancel or delete done."""
    transport = Interrupted()

    def factory(base_url: str, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers=headers, transport=transport)

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli_app, list(args), obj=factory, env=CLI_ENV)
        return result.exit_code, result.stdout, result.stderr

    sent = []
    for args, (request, check) in WRITES.items():
        if args[0] == "cancel":  # stopped in its read of the runs in flight, before the cancel
            # (Ctrl-C during the cancel itself: tests/cli/test_cancel_reports.py)
            assert invoke(*args) == (130, "", "interrupted\n")
            sent.append("GET /api/pipelines/3")
            continue
        assert invoke(*args) == (
            130,
            "",
            f"error: interrupted before the API at {API_URL} answered {request}; the request "
            f"may still complete; check with `{check}`\n",
        ), args
        sent.append(request)
    # a read changes nothing: interrupted, no more
    assert invoke("show", "3") == (130, "", "interrupted\n")
    assert transport.sent == [*sent, "GET /api/pipelines/3"]


def test_ctrl_c_in_the_installed_command_while_a_write_waits_says_it_may_still_complete() -> None:
    """A real SIGINT reaches `pipeline` while it waits for the API's answer (here an API that
    reads the request and never answers)."""
    received = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def take_and_hold() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                received.set()
                connection.recv(1)  # until the command closes its end

        holder = threading.Thread(target=take_and_hold, daemon=True)
        holder.start()
        command = subprocess.Popen(
            [str(Path(sys.executable).with_name("pipeline")), "retry", "3"],
            env={"PATH": "/usr/bin:/bin", "PIPELINE_API_URL": f"http://127.0.0.1:{port}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert received.wait(30), "the command never sent its request"
            command.send_signal(signal.SIGINT)
            stdout, stderr = command.communicate(timeout=30)
        finally:
            command.kill()
        holder.join(5)
    assert (command.returncode, stdout, stderr) == (
        130,
        "",
        f"error: interrupted before the API at http://127.0.0.1:{port} answered POST "
        "/api/pipelines/3/retry; the request may still complete; check with `pipeline show 3`\n",
    )
