"""Trigger, retry and cancel racing each other or Prefect, on a real database (Prefect's side is
played by the test: its server is unreachable here)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import idempotency
from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, PipelineStage, Status
from app.pipeline import orchestrator
from app.pipeline.claim import claim_run
from app.pipeline.reconcile import unclaimed
from app.pipeline.status import update_pipeline_status
from tests.support.rows import add_pipeline, add_run, count_rows, read_run

FLOW_RUN_ID = "0b4f6a52-2d1c-4c3e-9a57-3f1d5e8b2c10"
TIMED_OUT = "Prefect API at http://127.0.0.1:9/api is unreachable (ReadTimeout)"
T = TypeVar("T")


async def test_a_trigger_that_gave_up_after_a_worker_took_its_run_keeps_it(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect's client gave up (every attempt timed out) after its server had made the flow run
    and a worker had claimed it: the trigger deleted the run's rows under the running flow and
    answered 503."""

    async def made_then_timed_out(
        *, pipeline_id: int, run_id: int, record_count: int, key: str
    ) -> FlowRun:
        await claim_run(  # the worker's flow run, meanwhile
            pipeline_id=pipeline_id,
            flow_run_id=str(UUID(int=run_id)),
            run_id=run_id,
            record_count=record_count,
            key=key,
        )
        await update_pipeline_status(
            pipeline_id, "generate", Status.RUNNING, run_id=run_id, attempt=1
        )
        raise orchestrator.PrefectUnavailableError(TIMED_OUT)

    monkeypatch.setattr(orchestrator, "trigger_run", made_then_timed_out)
    pipeline_id = await add_pipeline("slow prefect")
    triggered = await client.post(f"/api/pipelines/{pipeline_id}/trigger")
    assert (triggered.status_code, triggered.json()) == (
        202,
        {
            "pipeline_id": pipeline_id,
            "run_id": 1,
            "prefect_flow_run_id": str(UUID(int=1)),
            "prefect_flow_run_url": orchestrator.flow_run_url(str(UUID(int=1))),
            "status": "running",
        },
    )
    created = await client.post("/api/pipelines", json={"name": "made and run", "trigger": True})
    assert created.status_code == 201, created.text
    latest = created.json()["latest_run"]
    assert (latest["id"], latest["status"], latest["prefect_flow_run_id"]) == (
        2,
        "running",
        str(UUID(int=2)),
    )
    assert (await count_rows(Pipeline), await count_rows(PipelineRun)) == (2, 2)


async def test_a_trigger_that_failed_before_any_flow_run_took_its_run_withdraws_it(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No flow run claimed it (cancelled or not while Prefect was asked): nothing is kept."""

    async def cancelled_then_timed_out(
        *, pipeline_id: int, run_id: int, record_count: int, key: str
    ) -> FlowRun:
        cancel = await client.post(f"/api/pipelines/{pipeline_id}/cancel")
        assert (cancel.status_code, cancel.json()["id"]) == (202, run_id)
        raise orchestrator.PrefectUnavailableError(TIMED_OUT)

    monkeypatch.setattr(orchestrator, "trigger_run", cancelled_then_timed_out)
    pipeline_id = await add_pipeline("withdrawn")
    triggered = await client.post(f"/api/pipelines/{pipeline_id}/trigger")
    assert (triggered.status_code, triggered.json()["detail"]) == (503, TIMED_OUT)
    assert (await count_rows(PipelineRun), await count_rows(PipelineStage)) == (0, 0)
    assert (await claim_run_refused(pipeline_id)).startswith("run 1 does not exist")


async def claim_run_refused(pipeline_id: int) -> str:
    """What the flow run Prefect made after all is told when it starts."""
    try:
        await claim_run(pipeline_id=pipeline_id, flow_run_id=FLOW_RUN_ID, run_id=1, record_count=1)
    except Exception as refused:
        return str(refused)
    return "claimed"


async def test_a_retry_double_click_gets_the_one_new_run(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second click came once the first had committed its run, while Prefect made its flow
    run: "pipeline 1 is pending; only a failed or cancelled pipeline can be retried" (409).
    Prefect answers the first only once the second is seen waiting for that flow run: a second
    click that reached the database after it was made would get the same answer without the
    race."""
    prefect_asked: list[int] = []
    asked, made, second_waits = asyncio.Event(), asyncio.Event(), asyncio.Event()
    wait_for_winner = idempotency.wait_for_winner

    async def watched(look: Callable[[AsyncSession], Awaitable[tuple[bool, T]]], **kw: str) -> T:
        async def looked(session: AsyncSession) -> tuple[bool, T]:
            done, found = await look(session)
            if not done:  # the first click's run, still without its flow run
                second_waits.set()
            return done, found

        return await wait_for_winner(looked, **kw)

    async def slow_prefect(
        *, pipeline_id: int, run_id: int, record_count: int, key: str
    ) -> FlowRun:
        prefect_asked.append(run_id)
        asked.set()
        await made.wait()
        return FlowRun(id=UUID(int=run_id), flow_id=UUID(int=8), name="slow")

    monkeypatch.setattr(orchestrator, "trigger_run", slow_prefect)
    monkeypatch.setattr(idempotency, "wait_for_winner", watched)
    pipeline_id = await add_pipeline("double click")
    failed = await add_run(pipeline_id, Status.FAILED, {}, error="boom")
    first = asyncio.create_task(client.post(f"/api/pipelines/{pipeline_id}/retry"))
    await asked.wait()  # the first click's run is committed; Prefect is making its flow run
    second = asyncio.create_task(client.post(f"/api/pipelines/{pipeline_id}/retry"))
    seen = asyncio.create_task(second_waits.wait())
    await asyncio.wait([seen, second], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    seen.cancel()
    raced = second_waits.is_set()  # before the flow run is made: a later look proves nothing
    made.set()
    answers = [(r.status_code, r.json()) for r in await asyncio.gather(first, second)]
    assert raced, (
        "the second click never waited for the first one's flow run (it answered first, or not "
        "within 10 s): the double click's race was not run"
    )
    new_run = failed + 1
    assert (
        answers
        == [
            (
                202,
                {
                    "pipeline_id": pipeline_id,
                    "run_id": new_run,
                    "prefect_flow_run_id": str(UUID(int=new_run)),
                    "prefect_flow_run_url": orchestrator.flow_run_url(str(UUID(int=new_run))),
                    "status": "pending",
                },
            )
        ]
        * 2
    )
    assert prefect_asked == [new_run]
    assert await count_rows(PipelineRun) == 2

    # the retry's run has ended: a retry now is a new request, refused (202 with that old run was
    # the double click's path, taken for the idempotency key's whole day)
    async with get_sessionmaker()() as session:
        await session.execute(
            update(PipelineRun).where(PipelineRun.id == new_run).values(status=Status.COMPLETED)
        )
        await session.commit()
    refused = await client.post(f"/api/pipelines/{pipeline_id}/retry")
    assert (refused.status_code, refused.json()["message"]) == (
        409,
        f"pipeline {pipeline_id} is completed; only a failed or cancelled pipeline can be "
        f"retried (use POST /api/pipelines/{pipeline_id}/trigger for a new run)",
    )

    await add_run(pipeline_id, Status.COMPLETED, {})  # a run triggered since: not a retry's race
    refused = await client.post(f"/api/pipelines/{pipeline_id}/retry")
    assert (refused.status_code, refused.json()["detail"]) == (
        409,
        f"pipeline {pipeline_id} is completed; only a failed or cancelled pipeline can be "
        f"retried (use POST /api/pipelines/{pipeline_id}/trigger for a new run)",
    )


async def test_a_repeated_cancel_answers_with_the_newest_run_again(
    client: httpx.AsyncClient,
) -> None:
    """Two runs in flight: the first cancel ends both (oldest first, the newer ends last) and
    answers with the newer; its repeat, with none left in flight, answers with the run that
    ended last: the newer again."""
    pipeline_id = await add_pipeline("two in flight")
    older = await add_run(pipeline_id, Status.RUNNING, {})
    newer = await add_run(pipeline_id, Status.PENDING, {})
    first = await client.post(f"/api/pipelines/{pipeline_id}/cancel")
    again = await client.post(f"/api/pipelines/{pipeline_id}/cancel")
    assert [(r.status_code, r.json()["id"], r.json()["status"]) for r in (first, again)] == [
        (202, newer, "cancelled"),
        (202, newer, "cancelled"),
    ]
    runs = (await client.get(f"/api/pipelines/{pipeline_id}/runs")).json()["items"]
    assert [(run["id"], run["status"]) for run in runs] == [
        (newer, "cancelled"),
        (older, "cancelled"),
    ]


async def test_a_burst_of_create_and_trigger_in_a_prefect_outage_is_503s_leaving_nothing(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request held its connection while Prefect's client timed out, and its withdrawal then
    needed a second one: 40 at once drained the pool (5 + 10), 30 s later most answered 500 and
    their pipelines and runs stayed."""

    async def outage(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        await asyncio.sleep(1.0)  # Prefect's client timing out
        raise orchestrator.PrefectUnavailableError(TIMED_OUT)

    monkeypatch.setattr(orchestrator, "trigger_run", outage)
    answers = await asyncio.wait_for(
        asyncio.gather(
            *(
                client.post("/api/pipelines", json={"name": f"p{i}", "trigger": True})
                for i in range(40)
            )
        ),
        25,  # under the pool's 30 s wait: a drained pool fails here
    )
    assert [(a.status_code, a.json()["message"]) for a in answers] == [(503, TIMED_OUT)] * 40
    assert (await count_rows(Pipeline), await count_rows(PipelineRun)) == (0, 0)


async def test_a_schedules_run_claimed_as_the_watchdog_makes_its_row_runs_on_that_row(
    database: str,
) -> None:
    """PostgreSQL: a process claiming its scheduled run (no row yet) as the watchdog's pass made
    the row for it (the process late to start, past the pass's wait) met a duplicate key, and the
    flow run failed at once; the row stayed pending until the watchdog failed it too."""
    pipeline_id = await add_pipeline("late process")
    flow_run = FlowRun(id=UUID(FLOW_RUN_ID), flow_id=uuid4(), name="late")
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_rows_transaction() -> bool:  # its Prefect side, before it commits
        held.set()
        await release.wait()
        return True

    made = asyncio.create_task(
        unclaimed._give_run(  # the watchdog's own transaction, held open
            flow_run, pipeline_id, timedelta(0), created_at=None, then=hold_the_rows_transaction
        )
    )
    await held.wait()
    claim = asyncio.create_task(
        claim_run(
            pipeline_id=pipeline_id,
            flow_run_id=FLOW_RUN_ID,
            run_id=None,
            record_count=1000,
            scheduled=True,
        )
    )
    await _until_waiting(claim)
    release.set()
    run_id = await made
    assert (await claim).run_id == run_id
    run = await read_run(run_id)
    assert (run.status, run.prefect_flow_run_id) == (Status.PENDING, FLOW_RUN_ID)
    assert await count_rows(PipelineRun) == 1


async def _until_waiting(claim: asyncio.Task[object]) -> None:
    """Until the claim waits on the held transaction: PostgreSQL shows a lock not granted;
    SQLite's claim waits to begin (its write lock), which nothing shows: half a second."""
    async with get_sessionmaker()() as session:
        if session.get_bind().dialect.name == "sqlite":
            await asyncio.sleep(0.5)
            return
        waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
        for _ in range(100):
            if await session.scalar(waiting) or claim.done():
                return
            await asyncio.sleep(0.05)
            await session.rollback()  # a fresh snapshot of the locks
    raise AssertionError("the claim never waited on the watchdog's row")
