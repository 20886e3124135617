"""POST …/retry with an Idempotency-Key, on a real database (Prefect's side is played by the test):
a repeat answers with the first retry's run however it ended, a key that triggered is a 422, and
retries with different keys racing still make one run."""

import asyncio
import contextlib
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun
from sqlalchemy import func, select, update

from app import service
from app.db import get_sessionmaker
from app.models import PipelineRun, Status
from app.pipeline import orchestrator
from app.retry import _retry_of
from tests.support.rows import add_pipeline, add_run


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A Prefect that makes each flow run it is asked for, a little slowly (a request racing
    another gets its turn meanwhile); the runs it was asked for."""
    asked: list[int] = []

    async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        asked.append(run_id)
        await asyncio.sleep(0.05)
        return FlowRun(id=UUID(int=run_id), flow_id=UUID(int=99), name=f"run-{run_id}")

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)
    return asked


def started(pipeline_id: int, run_id: int, status: str) -> dict[str, Any]:
    """The 202 body of a retry that started (or, repeated, had started) run `run_id`."""
    return {
        "pipeline_id": pipeline_id,
        "run_id": run_id,
        "prefect_flow_run_id": str(UUID(int=run_id)),
        "prefect_flow_run_url": orchestrator.flow_run_url(str(UUID(int=run_id))),
        "status": status,
    }


async def end_run(run_id: int, status: Status) -> None:
    async with get_sessionmaker()() as session:
        await session.execute(
            update(PipelineRun).where(PipelineRun.id == run_id).values(status=status)
        )
        await session.commit()


async def run_count() -> int:
    async with get_sessionmaker()() as session:
        return int(await session.scalar(select(func.count()).select_from(PipelineRun)) or 0)


async def test_a_repeated_retry_answers_with_the_first_retrys_run(
    client: httpx.AsyncClient, prefect: list[int]
) -> None:
    """The key was not read: a retry whose answer was lost, sent again once its run had failed,
    retried that run too (a third run), and once it had completed, was a 409."""
    pipeline_id = await add_pipeline("flaky")
    failed = await add_run(pipeline_id, Status.FAILED, {}, error="boom")
    url = f"/api/pipelines/{pipeline_id}/retry"
    first = await client.post(url, headers={"Idempotency-Key": "retry-1"})
    retried = failed + 1
    assert (first.status_code, first.json()) == (202, started(pipeline_id, retried, "pending"))

    await end_run(retried, Status.FAILED)  # the retry's run failed quickly
    again = await client.post(url, headers={"Idempotency-Key": "retry-1"})
    assert (again.status_code, again.json()) == (202, started(pipeline_id, retried, "failed"))
    await end_run(retried, Status.COMPLETED)
    again = await client.post(url, headers={"Idempotency-Key": "retry-1"})
    assert (again.status_code, again.json()) == (202, started(pipeline_id, retried, "completed"))
    assert (prefect, await run_count()) == ([retried], 2)

    # a new key is a new request: the pipeline completed, nothing to retry
    refused = await client.post(url, headers={"Idempotency-Key": "retry-2"})
    assert (refused.status_code, refused.json()["message"]) == (
        409,
        f"pipeline {pipeline_id} is completed; only a failed or cancelled pipeline can be "
        f"retried (use POST /api/pipelines/{pipeline_id}/trigger for a new run)",
    )


async def test_a_key_is_for_one_kind_of_request_on_one_pipeline(
    client: httpx.AsyncClient, prefect: list[int]
) -> None:
    """A trigger's key sent with a retry (or the other way round) is another request: a 422
    naming the key, as for create; the same key on another pipeline is that pipeline's own."""
    one = await add_pipeline("one")
    two = await add_pipeline("two")
    await add_run(one, Status.FAILED, {})
    triggered = await client.post(
        f"/api/pipelines/{one}/trigger", headers={"Idempotency-Key": "nightly"}
    )
    assert triggered.status_code == 202
    trigger_run = triggered.json()["run_id"]
    await end_run(trigger_run, Status.FAILED)
    refused = await client.post(
        f"/api/pipelines/{one}/retry", headers={"Idempotency-Key": "nightly"}
    )
    message = (
        f"Idempotency-Key 'nightly' was first used to trigger pipeline {one} (run {trigger_run}), "
        "not to retry it; send a new key for a new request, or repeat the first one exactly"
    )
    assert (refused.status_code, refused.json()) == (
        422,
        {
            "message": message,
            "detail": [
                {"loc": ["header", "Idempotency-Key"], "msg": message, "type": "key_reused"}
            ],
        },
    )

    retried = await client.post(f"/api/pipelines/{one}/retry", headers={"Idempotency-Key": "again"})
    assert retried.status_code == 202
    retry_run = retried.json()["run_id"]
    await end_run(retry_run, Status.CANCELLED)
    refused = await client.post(
        f"/api/pipelines/{one}/trigger", headers={"Idempotency-Key": "again"}
    )
    assert (refused.status_code, refused.json()["message"]) == (
        422,
        f"Idempotency-Key 'again' was first used to retry pipeline {one} (run {retry_run}), "
        "not to trigger it; send a new key for a new request, or repeat the first one exactly",
    )

    elsewhere = await add_run(two, Status.CANCELLED, {})
    for pipeline_id, new_run in ((two, retry_run + 2), (one, retry_run + 3)):
        answer = await client.post(
            f"/api/pipelines/{pipeline_id}/retry", headers={"Idempotency-Key": "again-elsewhere"}
        )
        assert (answer.status_code, answer.json()) == (
            202,
            started(pipeline_id, new_run, "pending"),
        )
    assert elsewhere == retry_run + 1
    assert (prefect, await run_count()) == (
        [trigger_run, retry_run, retry_run + 2, retry_run + 3],
        6,
    )


async def test_retries_racing_with_their_own_keys_get_the_one_new_run(
    client: httpx.AsyncClient, prefect: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each key made its own run: the unique key that settles a race is one per failed run, and
    a keyed retry's run holds the request's key instead, so eight clicks from eight clients (or
    `pipeline retry` twice at once) retried one failed run eight times."""
    pipeline_id = await add_pipeline("clicked")
    failed = await add_run(pipeline_id, Status.FAILED, {})
    read, all_read = [], asyncio.Event()

    async def read_slowly(**kwargs: Any) -> PipelineRun | None:
        """Each retry waits a little after reading the latest run, for the others to read it too
        (which they could, without the retry's lock)."""
        latest = await read_latest(**kwargs)
        read.append(latest.id if latest else None)
        if len(read) == 8:
            all_read.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_read.wait(), 0.2)
        return latest

    read_latest = service.get_latest_run
    monkeypatch.setattr("app.retry.get_latest_run", read_slowly)
    url = f"/api/pipelines/{pipeline_id}/retry"
    answers = await asyncio.gather(
        client.post(url),
        *(client.post(url, headers={"Idempotency-Key": f"client-{n}"}) for n in range(7)),
    )
    retried = failed + 1
    won = (202, started(pipeline_id, retried, "pending"))
    # another key's retry under way: a 409, not its run (a repeat of the key would find none)
    lost = (
        409,
        {
            "message": f"pipeline {pipeline_id} is being retried by another request (run "
            f"{retried}, pending); that request's Idempotency-Key gets its run; retry again once "
            "it has ended",
            "detail": f"pipeline {pipeline_id} is being retried by another request (run "
            f"{retried}, pending); that request's Idempotency-Key gets its run; retry again once "
            "it has ended",
        },
    )
    got = [(a.status_code, a.json()) for a in answers]
    assert got[0] == won  # the request without a key: its retry, or the one it raced
    assert sorted(got[1:], key=lambda answer: answer[0]) in ([won] + [lost] * 6, [lost] * 7)
    assert (prefect, await run_count()) == ([retried], 2)
    assert read == [failed] + [retried] * 7  # one at a time: each after the first one's run


async def test_another_keys_retry_under_way_is_a_409_not_its_run(
    client: httpx.AsyncClient, prefect: list[int]
) -> None:
    """A second key was answered with the first key's run and remembered nowhere: its repeat,
    once that run had failed, started another retry (or, completed, answered 409)."""
    pipeline_id = await add_pipeline("two keys")
    failed = await add_run(pipeline_id, Status.FAILED, {})
    url = f"/api/pipelines/{pipeline_id}/retry"
    first = await client.post(url, headers={"Idempotency-Key": "k1"})
    assert (first.status_code, first.json()) == (202, started(pipeline_id, failed + 1, "pending"))
    second = await client.post(url, headers={"Idempotency-Key": "k2"})
    assert (second.status_code, second.json()["message"]) == (
        409,
        f"pipeline {pipeline_id} is being retried by another request (run {failed + 1}, "
        "pending); that request's Idempotency-Key gets its run; retry again once it has ended",
    )
    await end_run(failed + 1, Status.FAILED)
    again = await client.post(url, headers={"Idempotency-Key": "k1"})
    assert (again.status_code, again.json()) == (202, started(pipeline_id, failed + 1, "failed"))
    assert (prefect, await run_count()) == ([failed + 1], 2)


async def test_a_trigger_key_never_finds_a_keyless_retrys_run(
    client: httpx.AsyncClient, prefect: list[int]
) -> None:
    """A keyless retry's own key was '<pipeline>:retry of run M', a trigger key's spelling: a
    trigger sent with `Idempotency-Key: retry of run M` was answered with that retry's run."""
    pipeline_id = await add_pipeline("spelled")
    failed = await add_run(pipeline_id, Status.FAILED, {})
    retried = await client.post(f"/api/pipelines/{pipeline_id}/retry")
    assert (retried.status_code, retried.json()) == (
        202,
        started(pipeline_id, failed + 1, "pending"),
    )
    await end_run(failed + 1, Status.FAILED)
    triggered = await client.post(
        f"/api/pipelines/{pipeline_id}/trigger",
        headers={"Idempotency-Key": f"retry of run {failed}"},
    )
    assert (triggered.status_code, triggered.json()) == (
        202,
        started(pipeline_id, failed + 2, "pending"),
    )
    assert (prefect, await run_count()) == ([failed + 1, failed + 2], 3)


async def test_a_keyless_retry_never_finds_a_triggers_run(
    client: httpx.AsyncClient, prefect: list[int]
) -> None:
    """The other way round: a trigger whose key spelled 'retry of run N' for its own run N made
    the keyless retry of N (once N failed) answer with N itself and start nothing, and while N
    was pending, a keyless retry of the run before it was answered with N."""
    pipeline_id = await add_pipeline("spelled too")
    failed = await add_run(pipeline_id, Status.FAILED, {})
    url = f"/api/pipelines/{pipeline_id}"
    triggered = await client.post(
        f"{url}/trigger", headers={"Idempotency-Key": f"retry of run {failed}"}
    )
    assert (triggered.status_code, triggered.json()) == (
        202,
        started(pipeline_id, failed + 1, "pending"),
    )
    busy = await client.post(f"{url}/retry")  # the trigger's run is no retry under way
    assert (busy.status_code, busy.json()["message"]) == (
        409,
        f"pipeline {pipeline_id} is pending; only a failed or cancelled pipeline can be "
        f"retried (use POST /api/pipelines/{pipeline_id}/trigger for a new run)",
    )

    mine = failed + 1
    await end_run(mine, Status.FAILED)
    await client.post(f"{url}/trigger", headers={"Idempotency-Key": f"retry of run {mine + 1}"})
    await end_run(mine + 1, Status.FAILED)
    retried = await client.post(f"{url}/retry")
    assert (retried.status_code, retried.json()) == (
        202,
        started(pipeline_id, mine + 2, "pending"),
    )
    assert (prefect, await run_count()) == ([mine, mine + 1, mine + 2], 4)


async def test_a_keyless_retry_waiting_on_another_names_the_retry_not_a_key(
    client: httpx.AsyncClient, prefect: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double click whose first retry is still starting was told of a request with
    Idempotency-Key 'retry of run N', a key nobody sent."""
    monkeypatch.setattr("app.idempotency.WAIT_FOR_WINNER_SECONDS", 0.2)
    pipeline_id = await add_pipeline("double click")
    failed = await add_run(pipeline_id, Status.FAILED, {})
    # the first click's run, before its flow run is made
    await add_run(pipeline_id, Status.PENDING, {}, idempotency_key=_retry_of(pipeline_id, failed))
    answer = await client.post(f"/api/pipelines/{pipeline_id}/retry")
    assert (answer.status_code, answer.json()["message"]) == (
        409,
        f"the retry of run {failed} is still being processed; repeat this request in a few seconds",
    )
    assert (prefect, await run_count()) == ([], 2)
