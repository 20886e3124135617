"""The deployment's schedules as Prefect's client reads and writes them, in memory, for the real
app/pipeline/schedules.py: a test stages a request racing another by what it does before one
of these calls (`before`). tests/e2e/test_schedules.py runs them against a real Prefect server."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from app.pipeline import orchestrator

DEPLOYMENT_ID = UUID("5c2d1f3e-0000-4000-8000-000000000001")
Step = Callable[[], Awaitable[None]]


def _not_found(what: str) -> ObjectNotFound:
    return ObjectNotFound(http_exc=LookupError(f"{what} not found"))


class FakePrefect:
    """The deployment's schedules by slug; `before[call]`: steps run (once each, in order)
    before the next calls of that name, e.g. another request removing a schedule."""

    def __init__(self) -> None:
        self.schedules: dict[str, DeploymentSchedule] = {}
        self.before: dict[str, list[Step]] = {}
        self.calls: list[str] = []

    async def _call(self, name: str) -> None:
        self.calls.append(name)
        if steps := self.before.get(name):
            await steps.pop(0)()

    async def read_deployment_schedules(self, deployment_id: UUID) -> list[DeploymentSchedule]:
        await self._call("read")
        return [s.model_copy() for s in self.schedules.values()]

    async def create_deployment_schedules(
        self, deployment_id: UUID, schedules: list[DeploymentScheduleCreate]
    ) -> list[DeploymentSchedule]:
        await self._call("create")
        [wanted] = schedules
        assert wanted.slug is not None
        if wanted.slug in self.schedules:
            request = httpx.Request("POST", "http://prefect.test/deployments/schedules")
            response = httpx.Response(409, request=request)
            raise PrefectHTTPStatusError("slug taken", request=request, response=response)
        self.schedules[wanted.slug] = DeploymentSchedule(
            id=uuid4(),
            deployment_id=deployment_id,
            schedule=wanted.schedule,
            active=wanted.active,
            parameters=wanted.parameters,
            slug=wanted.slug,
        )
        return [self.schedules[wanted.slug]]

    async def update_deployment_schedule(
        self, deployment_id: UUID, schedule_id: UUID, **changes: Any
    ) -> None:
        await self._call("update")
        found = next((s for s in self.schedules.values() if s.id == schedule_id), None)
        if found is None:
            raise _not_found(f"schedules/{schedule_id}")
        for field, value in changes.items():
            if value is not None:
                setattr(found, field, value)

    async def delete_deployment_schedule(self, deployment_id: UUID, schedule_id: UUID) -> None:
        await self._call("delete")
        slug = next((k for k, s in self.schedules.items() if s.id == schedule_id), None)
        if slug is None:
            raise _not_found(f"schedules/{schedule_id}")
        del self.schedules[slug]

    async def request(self, method: str, path: str, **_: Any) -> None:
        """POST /deployments/{id}/schedule: Prefect makes the upcoming runs (none here)."""
        assert (method, path) == ("POST", "/deployments/{id}/schedule")
        await self._call("schedule runs")

    async def read_flow_runs(self, **_: Any) -> list[Any]:
        return []

    def slugs(self) -> list[str]:
        return sorted(self.schedules)


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> FakePrefect:
    """The Prefect the app's schedules module talks to, in memory."""
    fake = FakePrefect()

    @contextlib.asynccontextmanager
    async def client() -> AsyncIterator[FakePrefect]:
        yield fake

    async def deployment_id(client: Any, *, refresh: bool = False) -> UUID:
        return DEPLOYMENT_ID

    monkeypatch.setattr(orchestrator, "prefect_client", client)
    monkeypatch.setattr(orchestrator, "read_deployment_id", deployment_id)
    return fake
