"""schedule_stopped: which scheduled runs a paused or removed schedule stops before they start.
(tests/e2e/test_schedules.py pauses a real schedule; a retry's timing is not practical there.)"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.client.schemas.objects import FlowRun

from app.pipeline import schedules


class _PausedEverywhere:
    """Prefect's answer for a deployment whose schedules are all paused or removed."""

    def __init__(self) -> None:
        self.asked: list[UUID] = []

    async def read_deployment_schedules(self, deployment_id: UUID) -> list[Any]:
        self.asked.append(deployment_id)
        return []


async def test_a_pause_stops_the_runs_to_come_not_a_retry_of_one_that_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retry skipped as "paused before this run started" left attempt 1's row pending."""
    prefect = _PausedEverywhere()

    @contextlib.asynccontextmanager
    async def client() -> AsyncIterator[_PausedEverywhere]:
        yield prefect

    monkeypatch.setattr(schedules, "get_client", client)
    deployment = uuid4()

    def run(run_count: int, auto_scheduled: bool = True) -> FlowRun:
        return FlowRun(
            flow_id=uuid4(),
            deployment_id=deployment,
            auto_scheduled=auto_scheduled,
            run_count=run_count,
        )

    assert [
        await schedules.schedule_stopped(run(0), 7),  # not started yet
        await schedules.schedule_stopped(run(1), 7),  # its first attempt
        await schedules.schedule_stopped(run(2), 7),  # Prefect retries it
        await schedules.schedule_stopped(run(1, auto_scheduled=False), 7),  # a trigger's run
    ] == [True, True, False, False]
    assert prefect.asked == [deployment, deployment]
