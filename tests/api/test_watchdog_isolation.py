"""A watchdog pass on a real database, with Prefect's answers given: one run Prefect refuses does
not hold back the runs after it (logged once, not at every pass), a stranded run whose process
began as it was cancelled says so, and a cancel whose worker stopped at once ends Cancelled in
Prefect, not Crashed."""

import logging
import time
from datetime import timedelta

import pytest
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed, Pending, Running

from app.models import Status
from app.pipeline.orchestrator import (
    PrefectAnsweredError,
    PrefectRefusedError,
    PrefectUnavailableError,
)
from app.pipeline.reconcile import watchdog
from app.pipeline.reconcile.flow_run_fixes import Stranded
from tests.support.rows import read_run
from tests.support.watchdog_prefect import (
    FLOW_RUN,
    OLDER_FLOW_RUN,
    Prefect,
    ended_run,
    run_row,
    shown_age,
    stamped,
)

SILENT = (
    "its flow-run process stopped responding (no heartbeat for {} s; worker or process killed?)"
)


@pytest.fixture
def prefect(database: str, monkeypatch: pytest.MonkeyPatch) -> Prefect:
    answers = Prefect()
    answers.install(monkeypatch)
    return answers


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def _two_silent_runs(prefect: Prefect) -> tuple[int, int]:
    """Two running runs whose processes died 300 s ago; Prefect shows both Running."""
    first = await run_row(Status.RUNNING, age=300, flow_run=OLDER_FLOW_RUN)
    second = await run_row(Status.RUNNING, age=300, flow_run=FLOW_RUN)
    prefect.states[OLDER_FLOW_RUN] = stamped(Running(), age=300)
    prefect.states[FLOW_RUN] = stamped(Running(), age=300)
    return first, second


@pytest.mark.parametrize(
    "refusal",
    [
        PrefectRefusedError(409, "Prefect API refused this service's request (409)"),
        PrefectAnsweredError(500, "Prefect API answered 500"),
        ValueError("a run the watchdog cannot apply"),
    ],
    ids=["4xx", "5xx", "any-other-error"],
)
async def test_a_run_that_always_fails_holds_back_no_run_after_it_and_is_logged_once(
    prefect: Prefect, caplog: pytest.LogCaptureFixture, refusal: Exception
) -> None:
    since = time.monotonic()
    first, second = await _two_silent_runs(prefect)
    prefect.refusing[OLDER_FLOW_RUN] = refusal
    caplog.set_level(logging.INFO, logger="app.pipeline")

    verdicts = await watchdog.reconcile_once()

    assert [(v.run_id, v.status) for v in verdicts] == [(second, Status.FAILED)]
    shown_age(SILENT, verdicts[0].reason, age=300, since=since)  # the rest of it exactly
    assert ((await read_run(first)).status, (await read_run(second)).status) == (
        Status.RUNNING,
        Status.FAILED,
    )
    assert prefect.sent == [("crashed", FLOW_RUN, None)]
    how = f"{type(refusal).__name__}: {refusal}"
    logged = (
        f"watchdog: run {first} failed, the others go on (logged once while it fails so): {how}"
    )
    assert _errors(caplog) == [logged]
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is not None and error.exc_info[1] is refusal  # its traceback, once

    # the next passes: the same failure, not logged again
    assert await watchdog.reconcile_once() == []
    assert await watchdog.reconcile_once() == []
    assert _errors(caplog) == [logged]

    # Prefect takes it at last: it is settled, and the log says it works again
    del prefect.refusing[OLDER_FLOW_RUN]
    [verdict] = await watchdog.reconcile_once()
    assert (verdict.run_id, (await read_run(first)).status) == (first, Status.FAILED)
    assert f"watchdog: run {first} works again" in caplog.messages


async def test_prefect_unreachable_still_ends_the_pass(prefect: Prefect) -> None:
    first, second = await _two_silent_runs(prefect)
    prefect.refusing[OLDER_FLOW_RUN] = PrefectUnavailableError("Prefect API is unreachable")

    with pytest.raises(PrefectUnavailableError, match="unreachable"):
        await watchdog.reconcile_once()
    assert ((await read_run(first)).status, (await read_run(second)).status) == (
        Status.RUNNING,
        Status.RUNNING,
    )
    assert prefect.sent == []


async def test_a_flow_run_that_cannot_be_settled_holds_back_no_other(
    prefect: Prefect, caplog: pytest.LogCaptureFixture
) -> None:
    """The settling pass: two runs failed 90 s ago, their processes killed before telling
    Prefect; Prefect refuses the first's Crashed (a 404: deleted meanwhile)."""
    await ended_run(Status.FAILED, ago=timedelta(seconds=90), flow_run=OLDER_FLOW_RUN)
    await ended_run(Status.FAILED, ago=timedelta(seconds=90), flow_run=FLOW_RUN)
    prefect.states[OLDER_FLOW_RUN] = stamped(Running(), age=95)
    prefect.states[FLOW_RUN] = stamped(Running(), age=95)
    prefect.refusing[OLDER_FLOW_RUN] = PrefectRefusedError(404, "Prefect API refused (404)")

    assert await watchdog.reconcile_once() == []
    assert await watchdog.reconcile_once() == []

    assert [told[:2] for told in prefect.settled] == [(FLOW_RUN, StateType.CRASHED)] * 2
    assert _errors(caplog) == [
        f"watchdog: settling flow run {OLDER_FLOW_RUN} failed, the others go on (logged once "
        "while it fails so): PrefectRefusedError: Prefect API refused (404)"
    ]


async def test_a_stranded_run_whose_process_began_as_it_was_cancelled_says_so(
    prefect: Prefect,
) -> None:
    """Pending for 301 s, its process made it Running between the watchdog's read and its
    cancel: Prefect accepted both, the Cancelled last. The row once said "its flow-run process
    never began"."""
    run_id = await run_row(Status.PENDING, age=310)
    prefect.states[FLOW_RUN] = stamped(Pending(), age=301)
    prefect.stranded = Stranded.STARTED

    [verdict] = await watchdog.reconcile_once()

    reason = (
        "its flow-run process began too late: Prefect's flow run was cancelled as it started, "
        "Pending for longer than the watchdog waits (PIPELINE_PENDING_TIMEOUT_SECONDS); trigger "
        "the pipeline again"
    )
    assert (verdict.run_id, verdict.status, verdict.reason) == (run_id, Status.FAILED, reason)
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.FAILED, reason)


async def test_a_stranded_run_that_started_before_the_cancel_is_left_to_the_next_pass(
    prefect: Prefect,
) -> None:
    run_id = await run_row(Status.PENDING, age=310)
    prefect.states[FLOW_RUN] = stamped(Pending(), age=301)
    prefect.stranded = Stranded.LEFT

    assert await watchdog.reconcile_once() == []
    assert (await read_run(run_id)).status == Status.PENDING


CANCELLED_BY_THE_RUNTIME = "Execution was cancelled by the runtime environment."


async def test_a_cancel_whose_worker_stopped_at_once_ends_cancelled_in_prefect(
    prefect: Prefect,
) -> None:
    """The user cancelled; the worker stopped as it stopped the run's process, which ended
    Crashed. The user asked to cancel and the run stopped: Prefect is told Cancelled, by force
    (its rules keep a final state)."""
    await ended_run(Status.CANCELLED, ago=timedelta(seconds=70))
    prefect.states[FLOW_RUN] = stamped(Crashed(message=CANCELLED_BY_THE_RUNTIME), age=65)

    assert await watchdog.reconcile_once() == []

    assert prefect.settled == [
        (
            FLOW_RUN,
            StateType.CANCELLED,
            "watchdog: this service's run was cancelled, and its worker stopped as it stopped "
            f"the run's process, which ended Crashed ({CANCELLED_BY_THE_RUNTIME})",
            StateType.CRASHED,
            True,
        )
    ]
    assert prefect.read_types[-1] == [
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.RUNNING,
        StateType.CANCELLING,
        StateType.PAUSED,
        StateType.CRASHED,
    ]


async def test_only_a_cancelled_run_s_crash_is_replaced_and_only_after_the_grace(
    prefect: Prefect,
) -> None:
    # a run that failed and Crashed in Prefect: both say it ended badly, left as is
    await ended_run(Status.FAILED, ago=timedelta(seconds=70))
    prefect.states[FLOW_RUN] = stamped(Crashed(), age=65)
    assert await watchdog.reconcile_once() == []
    # and with no cancelled run ended lately, Crashed flow runs are not even read
    assert (prefect.settled, prefect.read_types) == ([], [settling_unfinished()])

    # cancelled, Crashed 30 s ago: its worker may still be setting Cancelled
    prefect.read_types.clear()
    await ended_run(Status.CANCELLED, ago=timedelta(seconds=70), flow_run=OLDER_FLOW_RUN)
    prefect.states[OLDER_FLOW_RUN] = stamped(Crashed(), age=30)
    assert await watchdog.reconcile_once() == []
    assert prefect.settled == []


def settling_unfinished() -> list[StateType]:
    return [
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.RUNNING,
        StateType.CANCELLING,
        StateType.PAUSED,
    ]
