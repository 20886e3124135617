"""A trigger whose database goes down with its Prefect (a Prefect server on the same PostgreSQL):
a 503 keeps nothing of the request, or, when the database stays down, names what it kept.

Each test has a cluster of its own (stopping it disturbs no other test); Prefect's side is played
by the test: its server is unreachable here, and its 500 is what the reviewer's Prefect answered
as its database stopped."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from uuid import UUID

import httpx
import pytest
from httpx import ASGITransport

from app import withdrawal
from app.main import create_app
from app.models import Status
from app.pipeline import claim, orchestrator
from tests.conftest import migrate, use_settings
from tests.support.postgres import PostgresCluster, create_database, own_cluster
from tests.support.rows import add_pipeline, add_run

PREFECT_500 = (
    "Prefect API at http://127.0.0.1:9/api answered 500; check the Prefect server's log and its "
    "database."
)
FLOW_RUN_ID = str(UUID(int=7))


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with own_cluster() as cluster:
        yield cluster


@pytest.fixture
def database_url(cluster: PostgresCluster) -> str:
    url = create_database(cluster.url, "trigger_outage")
    migrate(url)
    return url


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await use_settings(DATABASE_URL=database_url)
    async with httpx.AsyncClient(
        transport=ASGITransport(app=create_app()), base_url="http://test"
    ) as client:
        yield client


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch, cluster: PostgresCluster) -> list[str]:
    """Each withdrawal's outcome; the database comes back after the first one failed (a
    restart), unless the test stops that (`attempts.append("stay down")` first)."""
    outcomes: list[str] = []
    real = claim.withdraw_unclaimed

    async def withdraw_unclaimed(run_id: int, pipeline_id: int | None) -> bool:
        try:
            withdrawn = await real(run_id, pipeline_id)
        except Exception as exc:
            outcomes.append(type(exc).__name__)
            if "stay down" not in outcomes:
                await asyncio.to_thread(cluster.start)
            raise
        outcomes.append(f"withdrawn: {withdrawn}")
        return withdrawn

    monkeypatch.setattr(claim, "withdraw_unclaimed", withdraw_unclaimed)
    return outcomes


def with_prefect_down(monkeypatch: pytest.MonkeyPatch, cluster: PostgresCluster) -> None:
    """The trigger: PostgreSQL stops under Prefect's server, which answers 500."""

    async def trigger_run(**_: object) -> None:
        await asyncio.to_thread(cluster.stop)
        raise orchestrator.PrefectAnsweredError(500, PREFECT_500)

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)


@pytest.fixture
def prefect_goes_down_with_it(monkeypatch: pytest.MonkeyPatch, cluster: PostgresCluster) -> None:
    with_prefect_down(monkeypatch, cluster)


@pytest.mark.usefixtures("prefect_goes_down_with_it")
async def test_a_create_whose_withdrawal_meets_a_restart_keeps_nothing(
    http: httpx.AsyncClient, attempts: list[str]
) -> None:
    created = await http.post("/api/pipelines", json={"name": "burst", "trigger": True})
    assert (created.status_code, created.json()["detail"]) == (503, PREFECT_500)
    assert attempts == ["ConnectionRefusedError", "withdrawn: True"]
    listed = await http.get("/api/pipelines")
    assert (listed.status_code, listed.json()["total"]) == (200, 0)


async def test_a_withdrawal_whose_answer_was_lost_is_not_tried_as_a_claim(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its commit landed and the connection dropped before the answer: the next attempt found
    no row and took it for a claimed run ("a flow run took it: kept"), then failed reading it
    (a 500, NoResultFound). Gone is withdrawn."""
    real = claim.withdraw_unclaimed
    outcomes: list[object] = []

    async def answer_lost_once(run_id: int, pipeline_id: int | None) -> bool:
        withdrawn = await real(run_id, pipeline_id)
        outcomes.append(withdrawn)
        if len(outcomes) == 1:
            raise ConnectionResetError(104, "Connection reset by peer")
        return withdrawn

    async def trigger_run(**_: object) -> None:
        raise orchestrator.PrefectAnsweredError(500, PREFECT_500)

    monkeypatch.setattr(claim, "withdraw_unclaimed", answer_lost_once)
    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)
    created = await http.post("/api/pipelines", json={"name": "lost", "trigger": True})
    assert (created.status_code, created.json()["detail"], outcomes) == (
        503,
        PREFECT_500,
        [True, True],
    )
    listed = await http.get("/api/pipelines")
    assert (listed.status_code, listed.json()["total"]) == (200, 0)


@pytest.mark.usefixtures("prefect_goes_down_with_it")
async def test_a_create_whose_database_stays_down_names_what_it_kept(
    http: httpx.AsyncClient,
    attempts: list[str],
    cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(withdrawal, "WITHDRAW_PATIENCE_SECONDS", 1.0)
    attempts.append("stay down")
    created = await http.post("/api/pipelines", json={"name": "burst", "trigger": True})
    deadline = f"{orchestrator.trigger_deadline().total_seconds():.0f}"
    assert (created.status_code, created.json()["detail"]) == (
        503,
        f"{PREFECT_500} The run was not started, and the database was unreachable "
        "(ConnectionRefusedError) for the 1 s this request spent removing what it had made: "
        "pipeline 1 and its run 1 were made and stay, pending with no flow run; do not repeat "
        "this request (it would make another pipeline). Once the database is back, the "
        f'watchdog fails run 1 when it is {deadline} s old ("the trigger never reached '
        'Prefect"; a flow run Prefect made after all runs it instead). Then retry pipeline 1 '
        "(POST /api/pipelines/1/retry), or delete it (DELETE /api/pipelines/1).",
    )
    assert set(attempts) == {"stay down", "ConnectionRefusedError"}
    cluster.start()
    kept = (await http.get("/api/pipelines/1")).json()
    assert (
        kept["status"],
        kept["latest_run"]["id"],
        kept["latest_run"]["prefect_flow_run_id"],
    ) == (
        "pending",
        1,
        None,
    )


@pytest.mark.usefixtures("prefect_goes_down_with_it")
async def test_a_create_sent_with_a_key_is_not_told_a_repeat_makes_another(
    http: httpx.AsyncClient,
    attempts: list[str],
    cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its repeat with the same Idempotency-Key finds this pipeline: "do not repeat this request
    (it would make another pipeline)" was not so."""
    monkeypatch.setattr(withdrawal, "WITHDRAW_PATIENCE_SECONDS", 1.0)
    attempts.append("stay down")
    created = await http.post(
        "/api/pipelines",
        json={"name": "burst", "trigger": True},
        headers={"Idempotency-Key": "burst-7"},
    )
    assert created.status_code == 503
    assert (
        "pipeline 1 and its run 1 were made and stay, pending with no flow run; a repeat with "
        "the same Idempotency-Key makes no other pipeline. Once the database is back"
    ) in created.json()["detail"]
    cluster.start()


async def test_a_trigger_whose_database_stays_down_names_its_run(
    http: httpx.AsyncClient,
    attempts: list[str],
    cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline_id = await add_pipeline("p")
    monkeypatch.setattr(withdrawal, "WITHDRAW_PATIENCE_SECONDS", 1.0)
    attempts.append("stay down")
    with_prefect_down(monkeypatch, cluster)
    triggered = await http.post(f"/api/pipelines/{pipeline_id}/trigger")
    deadline = f"{orchestrator.trigger_deadline().total_seconds():.0f}"
    assert (triggered.status_code, triggered.json()["detail"]) == (
        503,
        f"{PREFECT_500} The run was not started, and the database was unreachable "
        "(ConnectionRefusedError) for the 1 s this request spent removing what it had made: "
        "run 1 of pipeline 1 was made and stays, pending with no flow run; do not repeat this "
        "request (it would make another run). Once the database is back, the watchdog fails "
        f'run 1 when it is {deadline} s old ("the trigger never reached Prefect"; a flow run '
        "Prefect made after all runs it instead). Then retry pipeline 1 (POST "
        "/api/pipelines/1/retry), or delete it (DELETE /api/pipelines/1).",
    )
    cluster.start()
    runs = (await http.get(f"/api/pipelines/{pipeline_id}/runs")).json()
    assert [(r["id"], r["status"]) for r in runs["items"]] == [(1, "pending")]


async def test_a_retry_whose_withdrawal_meets_a_restart_keeps_nothing(
    http: httpx.AsyncClient,
    attempts: list[str],
    cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The retry's run goes through the same trigger as a create's."""
    pipeline_id = await add_pipeline("p")
    failed = await add_run(pipeline_id, Status.FAILED, {}, error="boom")
    with_prefect_down(monkeypatch, cluster)
    retried = await http.post(f"/api/pipelines/{pipeline_id}/retry")
    assert (retried.status_code, retried.json()["detail"]) == (503, PREFECT_500)
    assert attempts == ["ConnectionRefusedError", "withdrawn: True"]
    runs = (await http.get(f"/api/pipelines/{pipeline_id}/runs")).json()
    assert [(r["id"], r["status"]) for r in runs["items"]] == [(failed, "failed")]


async def test_a_flow_run_made_as_the_database_stopped_is_named_not_denied(
    http: httpx.AsyncClient, cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect made the flow run; the database stopped before its id was written: the run goes
    on (its flow run claims the row), so the 503 says so rather than "database unavailable"."""

    async def trigger_run(**_: object) -> SimpleNamespace:
        await asyncio.to_thread(cluster.stop)
        return SimpleNamespace(id=UUID(FLOW_RUN_ID))

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)
    created = await http.post("/api/pipelines", json={"name": "made", "trigger": True})
    assert (created.status_code, created.json()["detail"]) == (
        503,
        "The database became unreachable (ConnectionRefusedError) after the run was started: "
        f"pipeline 1 and its run 1 were made, and Prefect's flow run {FLOW_RUN_ID} runs it once "
        "the database is back; do not repeat this request (it would make another pipeline). "
        "Follow it with GET /api/pipelines/1.",
    )
