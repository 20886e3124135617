"""`pipeline logs --follow` of a cancelled run waits for the service's line saying so: the API
adds it once Prefect has the run's engine's last line, seconds after the cancel, and the
follower had stopped 3 s after the run ended, before it came."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from app.cli import service
from app.models import Status, utcnow
from app.pipeline import run_logs
from app.pipeline.run_logs import RunLog
from tests.cli.conftest import Cli, LogRead, PrefectLogs
from tests.support.rows import FLOW_RUN_ID, add_pipeline, add_run

T = datetime(2026, 11, 27, 23, 19, 43, tzinfo=UTC)
LINES = [
    RunLog(f"id-{n}", T + timedelta(seconds=n), "INFO", "prefect.flow_runs", f"line {n}", None)
    for n in range(3)
]


async def _cancelled_run() -> int:
    """A pipeline whose run was cancelled 10 s ago: past the follower's grace of its end."""
    pipeline_id = await add_pipeline("big")
    await add_run(
        pipeline_id,
        Status.CANCELLED,
        {},
        prefect_flow_run_id=FLOW_RUN_ID,
        error="cancelled through the API",
        completed_at=utcnow() - timedelta(seconds=10),
    )
    return pipeline_id


def _prefect(prefect_logs: PrefectLogs, *, line_from_read: int | None) -> list[int]:
    """The run's lines as the API reads them, its `run 1 cancelled …` line from the given read
    on (once its engine's last line reached Prefect); the run ids it was asked to end with."""
    asked: list[int] = []

    async def now(read: LogRead) -> list[RunLog]:
        assert read.cancelled is not None
        asked.append(read.cancelled.run_id)
        lines = list(LINES)
        if line_from_read is not None and len(asked) >= line_from_read:
            lines.append(run_logs.cancelled_line(read.cancelled, last=lines[-1]))
        return lines

    prefect_logs(now)
    return asked


async def test_the_follower_of_a_cancelled_run_waits_for_the_line_saying_so(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, prefect_logs: PrefectLogs
) -> None:
    pipeline_id = await _cancelled_run()
    monkeypatch.setattr(service, "FOLLOW_GRACE_SECONDS", 0.2)  # ended 10 s ago: long past it
    asked = _prefect(prefect_logs, line_from_read=12)  # ~0.6 s on, three times the grace
    followed = await cli("logs", str(pipeline_id), "--follow", "--interval", "0.05", "--json")
    printed = [json.loads(line) for line in followed.stdout.splitlines()]
    assert (followed.exit_code, followed.stderr) == (0, "")
    assert [(line["id"], line["message"]) for line in printed] == [
        ("id-0", "line 0"),
        ("id-1", "line 1"),
        ("id-2", "line 2"),
        ("run-1-cancelled", "run 1 cancelled through the API"),
    ]
    assert len(asked) >= 12 and set(asked) == {1}


async def test_the_wait_for_it_is_bounded(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, prefect_logs: PrefectLogs
) -> None:
    """A server that never adds the line (one from before it did) is waited for a while, not
    forever."""
    pipeline_id = await _cancelled_run()
    monkeypatch.setattr(service, "FOLLOW_GRACE_SECONDS", 0.2)
    monkeypatch.setattr(service, "CANCELLED_LINE_WAIT_SECONDS", 0.5)
    _prefect(prefect_logs, line_from_read=None)
    began = time.monotonic()
    followed = await cli("logs", str(pipeline_id), "--follow", "--interval", "0.05")
    waited = time.monotonic() - began
    assert (followed.exit_code, followed.stderr) == (0, "")
    assert followed.stdout == (
        "23:19:43.000 INFO    prefect.flow_runs  line 0\n"
        "23:19:44.000 INFO    prefect.flow_runs  line 1\n"
        "23:19:45.000 INFO    prefect.flow_runs  line 2\n"
    )
    assert 0.5 <= waited < 30
