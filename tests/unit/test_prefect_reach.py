"""What the watchdog says of Prefect's API not answering (app/pipeline/reconcile/prefect_reach.py):
a stack's first pass warned "Prefect API … is unreachable. Start the server" for the server the
stack had just started, and an outage was warned of on every pass, every 10 s."""

import logging

import pytest

from app.pipeline.orchestrator import PrefectUnavailableError
from app.pipeline.reconcile.prefect_reach import STARTING_SECONDS, PrefectReach

DOWN = PrefectUnavailableError("Prefect API at http://127.0.0.1:4200/api is unreachable")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    said = [record.getMessage() for record in caplog.records]
    caplog.clear()
    return said


def test_prefect_starting_beside_the_api_is_not_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    reach = PrefectReach(clock)
    reach.failed(DOWN)
    clock.now += STARTING_SECONDS - 1
    reach.failed(DOWN)
    reach.reached()
    assert _said(caplog) == []
    assert reach.down_since is None


def test_an_outage_is_said_once_as_found_and_once_as_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    reach = PrefectReach(clock)
    clock.now += STARTING_SECONDS
    reach.failed(DOWN)
    since = reach.down_since
    assert since is not None
    for _ in range(5):  # the passes after it
        clock.now += 10
        reach.failed(DOWN)
    assert _said(caplog) == [f"watchdog: {DOWN}"]
    reach.reached()
    reach.reached()
    assert _said(caplog) == [
        "watchdog: Prefect's API answers again (unreachable since "
        f"{since.isoformat(timespec='seconds')})"
    ]


def test_prefect_still_down_once_the_stack_has_started_is_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    reach = PrefectReach(clock)
    reach.failed(DOWN)  # starting: not yet said
    clock.now += STARTING_SECONDS
    reach.failed(DOWN)
    reach.failed(DOWN)
    assert _said(caplog) == [f"watchdog: {DOWN}"]
