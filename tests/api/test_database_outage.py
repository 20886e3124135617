"""The database goes away and comes back: 503 and /ready false meanwhile, recovery without a restart."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from httpx import ASGITransport

from app.main import create_app
from tests.conftest import migrate, use_settings
from tests.support.postgres import PostgresCluster, create_database, own_cluster


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own, so stopping it disturbs nothing else."""
    with own_cluster() as cluster:
        yield cluster


@pytest.fixture
def outage_url(cluster: PostgresCluster) -> str:
    url = create_database(cluster.url, "outage")
    migrate(url)
    return url


@pytest.fixture
async def outage_client(outage_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await use_settings(DATABASE_URL=outage_url)
    async with httpx.AsyncClient(
        transport=ASGITransport(app=create_app()), base_url="http://test"
    ) as http:
        yield http


async def test_database_outage_is_a_503_and_heals_by_itself(
    outage_client: httpx.AsyncClient, cluster: PostgresCluster
) -> None:
    created = await outage_client.post("/api/pipelines", json={"name": "kept"})
    assert created.status_code == 201

    cluster.stop()
    down = await outage_client.get("/api/pipelines/1")
    assert down.status_code == 503
    assert down.json()["detail"].endswith(
        "check DATABASE_URL and that the database server is running"
    )
    assert (await outage_client.post("/api/pipelines", json={"name": "x"})).status_code == 503
    ready = await outage_client.get("/ready")
    assert ready.status_code == 503
    database = ready.json()["checks"][0]
    assert (database["name"], database["ok"]) == ("database", False)

    cluster.start()
    back = await outage_client.get("/api/pipelines/1")
    assert (back.status_code, back.json()["name"]) == (200, "kept")
    listed = await outage_client.get("/api/pipelines")
    assert [p["name"] for p in listed.json()["items"]] == ["kept"]  # nothing lost, nothing added
