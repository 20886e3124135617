"""`pipeline logs --run N`: an earlier run's lines. After `cancel` said `runs 5 and 6 … cancelled`,
run 5's log could not be reached from the CLI, only the latest run's."""

from datetime import UTC, datetime, timedelta

import pytest

from app.cli import service
from app.models import Status, utcnow
from app.pipeline.run_logs import RunLog
from tests.cli.conftest import Cli, LogRead, PrefectLogs
from tests.support.rows import add_pipeline, add_run

T = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
EARLIER, LATEST = "8f2d7c59-2b4e-4a61-9a51-0d3c1c6f1e22", "0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10"


@pytest.fixture
def prefect(prefect_logs: PrefectLogs) -> list[LogRead]:
    """Prefect's lines of the two flow runs; the reads of them, in order."""
    return prefect_logs(
        {
            flow_run: [
                RunLog(
                    f"{flow_run}-{n}", T + timedelta(seconds=n), "INFO", "p", f"{word} {n}", None
                )
                for n in range(2)
            ]
            for flow_run, word in ((EARLIER, "earlier"), (LATEST, "latest"))
        }
    )


def _flow_runs(reads: list[LogRead]) -> list[str]:
    return [read.flow_run_id for read in reads]


async def _two_runs() -> None:
    """Pipeline 1: run 1 ended a minute ago, run 2 (the latest) completed."""
    await add_pipeline("twice")
    ended = utcnow() - timedelta(minutes=1)
    await add_run(1, Status.COMPLETED, {}, prefect_flow_run_id=EARLIER, completed_at=ended)
    await add_run(1, Status.COMPLETED, {}, prefect_flow_run_id=LATEST)


async def test_logs_of_an_earlier_run(
    cli: Cli, prefect: list[LogRead], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _two_runs()
    earlier = await cli("logs", "1", "--run", "1")
    assert (earlier.exit_code, earlier.stdout, earlier.stderr) == (
        0,
        "09:30:00.000 INFO    p  earlier 0\n09:30:01.000 INFO    p  earlier 1\n",
        "",
    )
    assert _flow_runs(prefect) == [EARLIER]
    latest = await cli("logs", "1")
    assert latest.stdout == "09:30:00.000 INFO    p  latest 0\n09:30:01.000 INFO    p  latest 1\n"

    # --follow of a run that ended: its lines, then it stops (no grace left to wait out)
    monkeypatch.setattr(service, "FOLLOW_GRACE_SECONDS", 0.0)
    followed = await cli("logs", "1", "--run", "1", "--follow", "--interval", "0.05")
    assert (followed.exit_code, followed.stdout, followed.stderr) == (0, earlier.stdout, "")
    assert set(_flow_runs(prefect)) == {EARLIER, LATEST}
    assert _flow_runs(prefect)[-1] == EARLIER


async def test_a_run_that_is_not_the_pipelines_is_refused(cli: Cli, prefect: list[LogRead]) -> None:
    await _two_runs()
    await add_pipeline("other")
    await add_run(2, Status.PENDING, {})
    for args in (["1", "--run", "3"], ["1", "--run", "9", "--follow"]):
        refused = await cli("logs", *args)
        run = args[2]
        assert (refused.exit_code, refused.stdout, refused.stderr) == (
            4,
            "",
            f"error: run {run} not found in pipeline 1\n",
        )
    unsent = await cli("logs", "2", "--run", "3")  # never reached Prefect: no lines yet
    assert (unsent.exit_code, unsent.stdout, unsent.stderr) == (
        0,
        "",
        "no log lines for run 3 of pipeline 2 yet\n",
    )
    assert _flow_runs(prefect) == []
