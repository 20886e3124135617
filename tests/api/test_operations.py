"""Operations on a real database with Prefect really unreachable: runs history, retry and cancel
rules, API keys, idempotency keys, limits, readiness."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun, StateType
from sqlalchemy import update

from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, Status, utcnow
from app.pipeline import orchestrator
from app.pipeline.status import (
    CANCELLED_IN_PREFECT,
    flow_run_key,
    new_stage_rows,
    update_pipeline_status,
)
from tests.conftest import Configure
from tests.support.rows import count_rows


async def _add_run(pipeline_id: int, status: Status, flow_run_id: str | None = None) -> int:
    async with get_sessionmaker()() as session:
        run = PipelineRun(
            pipeline_id=pipeline_id,
            record_count=5,
            status=status,
            prefect_flow_run_id=flow_run_id,
            stages=new_stage_rows(),
        )
        session.add(run)
        await session.commit()
        return run.id


async def test_runs_lists_every_run_newest_first(client: httpx.AsyncClient) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    ids = [await _add_run(1, s) for s in (Status.FAILED, Status.CANCELLED, Status.COMPLETED)]
    page = (await client.get("/api/pipelines/1/runs", params={"page_size": 2})).json()
    assert [run["id"] for run in page["items"]] == [ids[2], ids[1]]
    assert [run["status"] for run in page["items"]] == ["completed", "cancelled"]
    assert page["total"] == 3
    assert [s["name"] for s in page["items"][0]["stages"]] == [
        "generate",
        "ingest",
        "process",
        "transform",
        "export",
    ]


async def test_retry_needs_a_failed_or_cancelled_pipeline(client: httpx.AsyncClient) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    never = await client.post("/api/pipelines/1/retry")
    assert (never.status_code, never.json()["detail"]) == (
        409,
        "pipeline 1 has never run; only a failed or cancelled pipeline can be retried "
        "(use POST /api/pipelines/1/trigger for a new run)",
    )
    await _add_run(1, Status.COMPLETED)
    assert (await client.post("/api/pipelines/1/retry")).status_code == 409

    await _add_run(1, Status.FAILED)
    down = await client.post("/api/pipelines/1/retry")
    assert down.status_code == 503  # Prefect unreachable: no new run, the history is intact
    runs = (await client.get("/api/pipelines/1/runs")).json()
    assert [run["status"] for run in runs["items"]] == ["failed", "completed"]


async def test_cancel_rules(client: httpx.AsyncClient) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    none = await client.post("/api/pipelines/1/cancel")
    assert (none.status_code, none.json()["detail"]) == (409, "pipeline 1 has no run to cancel")

    run_id = await _add_run(1, Status.COMPLETED)
    done = await client.post("/api/pipelines/1/cancel")
    assert (done.status_code, done.json()["detail"]) == (
        409,
        f"run {run_id} of pipeline 1 already completed; only a pending or running run can be "
        "cancelled",
    )

    pending = await _add_run(1, Status.PENDING)  # never reached Prefect: nothing to ask there
    first = await client.post("/api/pipelines/1/cancel")
    assert first.status_code == 202
    body = first.json()
    assert (body["id"], body["status"], body["error"]) == (
        pending,
        "cancelled",
        "cancelled through the API",
    )
    assert {s["status"] for s in body["stages"]} == {"cancelled"}
    second = await client.post("/api/pipelines/1/cancel")
    assert (second.status_code, second.json()["status"]) == (202, "cancelled")


async def test_cancel_reaches_runs_older_than_the_latest(client: httpx.AsyncClient) -> None:
    """A run triggered while another ran ended first: the older one could not be cancelled, and
    DELETE, told the latest had ended, removed the schedule before refusing."""
    await client.post("/api/pipelines", json={"name": "p"})
    older = await _add_run(1, Status.RUNNING)
    newer = await _add_run(1, Status.COMPLETED)
    shown = (await client.get("/api/pipelines/1")).json()
    listed = (await client.get("/api/pipelines")).json()["items"]
    assert (shown["status"], shown["runs_in_flight"], listed[0]["runs_in_flight"]) == (
        "completed",
        1,
        1,
    )
    refused = await client.delete("/api/pipelines/1")
    assert (refused.status_code, refused.json()["message"]) == (
        409,
        f"run {older} of pipeline 1 is running; cancel it first "
        "(POST /api/pipelines/1/cancel), then delete the pipeline",
    )
    cancel = await client.post("/api/pipelines/1/cancel")
    assert (cancel.status_code, cancel.json()["id"], cancel.json()["status"]) == (
        202,
        older,
        "cancelled",
    )
    runs = (await client.get("/api/pipelines/1/runs")).json()["items"]
    assert [(run["id"], run["status"]) for run in runs] == [
        (newer, "completed"),
        (older, "cancelled"),
    ]
    again = await client.post("/api/pipelines/1/cancel")  # a client's retry of the same cancel
    assert (again.status_code, again.json()["id"]) == (202, older)
    assert (await client.get("/api/pipelines/1")).json()["runs_in_flight"] == 0

    await client.post("/api/pipelines", json={"name": "two in flight"})
    first, second = await _add_run(2, Status.RUNNING), await _add_run(2, Status.PENDING)
    cancel = await client.post("/api/pipelines/2/cancel")
    assert (cancel.status_code, cancel.json()["id"]) == (202, second)
    runs = (await client.get("/api/pipelines/2/runs")).json()["items"]
    assert [(run["id"], run["status"], run["error"]) for run in runs] == [
        (second, "cancelled", "cancelled through the API"),
        (first, "cancelled", "cancelled through the API"),
    ]


async def test_a_cancel_keeps_its_reason_when_the_stopped_process_writes_first(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race CI once lost: Prefect's worker stops the flow-run process within milliseconds of
    # the API's Cancelling, and the process writes its own generic "cancelled" before the API.
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await _add_run(1, Status.RUNNING, flow_run_id="00000000-0000-4000-8000-000000000001")

    async def stopped_at_once(flow_run_id: str) -> StateType:
        await update_pipeline_status(
            1, None, Status.CANCELLED, error=CANCELLED_IN_PREFECT, run_id=run_id
        )
        return StateType.RUNNING

    monkeypatch.setattr(orchestrator, "cancel_flow_run", stopped_at_once)
    cancelled = await client.post("/api/pipelines/1/cancel")
    assert cancelled.status_code == 202
    body = cancelled.json()
    assert (body["id"], body["status"], body["error"]) == (
        run_id,
        "cancelled",
        "cancelled through the API",
    )


async def test_a_cancel_that_a_stop_beat_is_a_409_not_a_failed_run(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect took the cancel, but the worker's stop had ended the run first (failed, "stopped
    … without a cancel"): the cancel answered 202 with that failed run."""
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await _add_run(1, Status.RUNNING, flow_run_id="00000000-0000-4000-8000-000000000002")

    async def stopped_first(flow_run_id: str) -> StateType:
        await update_pipeline_status(1, None, Status.FAILED, error="stopped", run_id=run_id)
        return StateType.RUNNING

    monkeypatch.setattr(orchestrator, "cancel_flow_run", stopped_first)
    refused = await client.post("/api/pipelines/1/cancel")
    assert (refused.status_code, refused.json()["message"]) == (
        409,
        f"run {run_id} of pipeline 1 already failed; only a pending or running run can be "
        "cancelled",
    )


async def test_a_trigger_answers_cancelled_for_a_run_cancelled_while_prefect_made_it(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trigger answered "pending" from the row it had read before the cancel."""
    await client.post("/api/pipelines", json={"name": "p"})
    cancelled: list[int] = []

    async def slow_prefect(
        *, pipeline_id: int, run_id: int, record_count: int, key: str
    ) -> FlowRun:
        cancel = await client.post(f"/api/pipelines/{pipeline_id}/cancel")
        cancelled.append(cancel.json()["id"])
        return FlowRun(id=UUID(int=run_id), flow_id=UUID(int=8), name="slow")

    monkeypatch.setattr(orchestrator, "trigger_run", slow_prefect)
    trigger = await client.post("/api/pipelines/1/trigger")
    assert (trigger.status_code, trigger.json()["status"]) == (202, "cancelled")
    assert cancelled == [trigger.json()["run_id"]]
    pipeline = (await client.get("/api/pipelines/1")).json()
    assert (pipeline["status"], pipeline["runs_in_flight"]) == ("cancelled", 0)
    # created and triggered at once: the answer is the pipeline with its run and stages
    created = await client.post("/api/pipelines", json={"name": "q", "trigger": True})
    assert created.status_code == 201, created.text
    run = created.json()["latest_run"]
    assert (run["status"], [s["status"] for s in run["stages"]]) == ("cancelled", ["cancelled"] * 5)


async def test_a_new_database_s_run_1_is_not_given_another_database_s_flow_run(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect answers a known idempotency key with the flow run it made for it. The key was the
    run's tag, `pipeline-run:1`: a new database (var/pipelines.db removed, a move to PostgreSQL)
    on the same Prefect server got the old database's run 1 back, which never ran this one."""
    old = FlowRun(id=UUID(int=1), flow_id=UUID(int=8), name="old", tags=["pipeline-run:1"])
    made = {"pipeline-run:1": old}  # Prefect's flow runs by idempotency key

    async def prefect(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        return made.setdefault(key, FlowRun(id=UUID(int=len(made) + 1), flow_id=UUID(int=8)))

    monkeypatch.setattr(orchestrator, "trigger_run", prefect)
    await client.post("/api/pipelines", json={"name": "p"})
    first = (await client.post("/api/pipelines/1/trigger")).json()
    assert (first["run_id"], first["prefect_flow_run_id"]) == (1, str(UUID(int=2)))
    async with get_sessionmaker()() as session:
        run = await session.get(PipelineRun, 1)
        assert run is not None
        assert list(made) == ["pipeline-run:1", flow_run_key(1, run.created_at)]
    assert flow_run_key(1, run.created_at) == (
        f"pipeline-run:1@{run.created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
    )


async def test_api_keys_guard_mutations(client: httpx.AsyncClient, configure: Configure) -> None:
    await configure(API_KEYS="alpha, beta")
    missing = await client.post("/api/pipelines", json={"name": "p"})
    assert missing.status_code == 401
    assert missing.json()["detail"] == (
        "this endpoint needs an API key: send it as 'X-API-Key: <key>' or "
        "'Authorization: Bearer <key>' (keys are configured in API_KEYS)"
    )
    wrong = await client.post("/api/pipelines", json={"name": "p"}, headers={"X-API-Key": "gamma"})
    assert (wrong.status_code, wrong.json()["detail"]) == (
        401,
        "the API key is not valid; check the key you send against API_KEYS",
    )
    assert (await count_rows(Pipeline)) == 0
    ok = await client.post("/api/pipelines", json={"name": "p"}, headers={"X-API-Key": "beta"})
    assert ok.status_code == 201
    bearer = await client.post("/api/pipelines/1/cancel", headers={"Authorization": "Bearer alpha"})
    assert bearer.status_code == 409  # authorised; there is just nothing to cancel
    assert (await client.post("/api/pipelines/1/trigger")).status_code == 401
    assert (await client.get("/api/pipelines/1")).status_code == 200  # reads stay open

    await configure(API_KEYS="alpha", API_KEYS_FOR_READS="true")
    assert (await client.get("/api/pipelines/1")).status_code == 401
    assert (await client.get("/api/pipelines/1", headers={"X-API-Key": "alpha"})).status_code == 200


async def test_writes_from_another_sites_pages_are_refused(client: httpx.AsyncClient) -> None:
    """Without API keys (the default) any page a user opens could post a form here: a multipart
    upload or a bodiless trigger needs no CORS preflight. Browsers mark such a request."""
    form = {"file": ("x.csv", b"id,name\n1,a\n", "text/csv")}
    # same-site: a page on another port of localhost (a notebook, a dev server), a subdomain
    for site in ("cross-site", "same-site"):
        refused = (
            f"refused: this write came from a page of another site or origin (Sec-Fetch-Site: "
            f"{site}); write through this service's dashboard, the pipeline CLI or an HTTP client"
        )
        for path, files in (("/api/pipelines", form), ("/api/pipelines/1/trigger", None)):
            response = await client.post(path, files=files, headers={"Sec-Fetch-Site": site})
            assert (response.status_code, response.json()["detail"]) == (403, refused), path
    assert (await count_rows(Pipeline)) == 0
    for site in ("same-origin", "none"):  # the dashboard, a bookmark
        created = await client.post(
            "/api/pipelines", json={"name": site}, headers={"Sec-Fetch-Site": site}
        )
        assert created.status_code == 201, site
    cross_site_read = await client.get("/api/pipelines/1", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site_read.status_code == 200  # reads are no forgery; CORS keeps the answer


async def test_idempotency_key_returns_the_same_pipeline(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    headers = {"Idempotency-Key": "order-7"}
    first = await client.post("/api/pipelines", json={"name": "p"}, headers=headers)
    again = await client.post("/api/pipelines", json={"name": "p"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()

    racing = await asyncio.gather(
        *(
            client.post("/api/pipelines", json={"name": "r"}, headers={"Idempotency-Key": "race"})
            for _ in range(6)
        )
    )
    assert {r.json()["id"] for r in racing} == {2}
    assert await count_rows(Pipeline) == 2

    async with get_sessionmaker()() as session:  # outside the window, a key is new again
        await session.execute(
            update(Pipeline).where(Pipeline.id == 1).values(created_at=utcnow() - timedelta(days=2))
        )
        await session.commit()
    later = await client.post("/api/pipelines", json={"name": "p"}, headers=headers)
    assert later.json()["id"] not in (1, 2)  # PostgreSQL sequences skip the racers' ids
    assert await count_rows(Pipeline) == 3


async def test_an_idempotency_key_sent_with_another_request_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    """The key answered with the first pipeline, silently: a different name, a trigger that
    never started (the IETF draft on Idempotency-Key: 422 for a key reused with another body)."""
    headers = {"Idempotency-Key": "K1"}
    first = await client.post(
        "/api/pipelines", json={"name": "first", "record_count": 10}, headers=headers
    )
    assert first.status_code == 201
    refused = (
        "Idempotency-Key 'K1' was first used to create pipeline 1 ('first') "
        "with a different request; send a new key for a new request, or repeat the first one "
        "exactly"
    )
    for other in (
        {"name": "second", "record_count": 10},
        {"name": "first", "record_count": 10, "trigger": True},
        {"name": "first"},  # record_count 1000, its default
    ):
        response = await client.post("/api/pipelines", json=other, headers=headers)
        assert (response.status_code, response.json()["message"]) == (422, refused), other
        assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    # the same request in other words (its fields in another order, a default spelled out)
    same = {"record_count": 10, "trigger": False, "name": "first"}
    again = await client.post("/api/pipelines", json=same, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    assert await count_rows(Pipeline) == 1
    assert await count_rows(PipelineRun) == 0


async def test_oversized_body_is_a_413(client: httpx.AsyncClient, configure: Configure) -> None:
    await configure(PIPELINE_MAX_BODY_BYTES="1000")
    body = json.dumps({"name": "p", "description": "x" * 2000}).encode()

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: chunked, as it arrives
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    declared = await client.post("/api/pipelines", content=body)
    chunked = await client.post("/api/pipelines", content=streamed())
    too_large = (
        "request body larger than 1,000 bytes (PIPELINE_MAX_BODY_BYTES); send a smaller body"
    )
    for response in (declared, chunked):
        assert (response.status_code, response.json()) == (
            413,
            {"message": too_large, "detail": too_large},
        )
    assert "content-length" not in chunked.request.headers


async def test_a_body_that_is_no_json_object_says_what_to_send(client: httpx.AsyncClient) -> None:
    empty = "body: empty or null; send a JSON object with Content-Type: application/json"
    cases = [  # curl -d sends application/x-www-form-urlencoded unless told otherwise
        (
            "application/x-www-form-urlencoded",
            '{"name": "p"}',
            "body: send a JSON object with "
            "Content-Type: application/json (this one's is application/x-www-form-urlencoded)",
        ),
        (
            None,
            '{"name": "p"}',
            "body: send a JSON object with Content-Type: application/json (this one's is none)",
        ),
        ("application/json", "", empty),
        ("application/json; charset=utf-8", "null", empty),
        (
            "application/json",
            "[1, 2]",
            "body: must be a JSON object ({...}), not a list, string or number",
        ),
    ]
    for content_type, body, message in cases:
        headers = {"content-type": content_type} if content_type else {}
        response = await client.post("/api/pipelines", content=body, headers=headers)
        assert (response.status_code, response.json()["message"]) == (422, message), body


ID_TOO_BIG = "pipeline_id: must be at most 2,147,483,647; got a number of 20 digits"


def id_below_1(given: int) -> str:
    return f"pipeline_id: must be at least 1; got {given}"


ID_NOT_INT = 'pipeline_id: must be a whole number, like 2; got "abc"'
DIGITS_ONLY = "must be written as a whole number without a decimal point or exponent"


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "POST",
            "/api/pipelines",
            "[1, 2]",
            "body: must be a JSON object ({...}), not a list, string or number",
        ),
        ("POST", "/api/pipelines", '{"name": 5}', "name: must be text (in quotes), not 5"),
        (  # pydantic's "Input should be a valid string, unable to parse raw data as a unicode …"
            "POST",
            "/api/pipelines",
            '{"name": "a\\ud800b"}',
            "name: must be text without an unpaired surrogate (\\ud800 to \\udfff on its own): "
            "write the character itself, or both halves of its pair",
        ),
        (  # pydantic's "Input should be 'created', …" where every other 422 says what was sent
            "GET",
            "/api/pipelines?status=bogus",
            "",
            "status: must be 'created', 'pending', 'running', 'completed', 'failed' or "
            "'cancelled'; got \"bogus\"",
        ),
        (
            "POST",
            "/api/pipelines",
            '{"name": "x", "record_count": 1e400}',
            "record_count: must be a whole number, like 1000; got Infinity",
        ),
        (
            "POST",
            "/api/pipelines",
            '{"name": "x", "record_count": 100000000000000000000000}',
            "record_count: must be at most 50,000,000 (PIPELINE_MAX_RECORD_COUNT); "
            "got a number of 24 digits",
        ),
        (
            "POST",
            "/api/pipelines",
            '{"name": "x", "trigger": "maybe"}',
            'trigger: must be true or false, not "maybe"',
        ),
        (
            "POST",
            "/api/pipelines",
            "null",
            "body: empty or null; send a JSON object with Content-Type: application/json",
        ),
        ("POST", "/api/pipelines", "\x00\xff", "body: not valid JSON (error at character 0)"),
        ("GET", "/api/pipelines/99999999999999999999", None, ID_TOO_BIG),
        ("GET", "/api/pipelines/-3/runs", None, id_below_1(-3)),
        ("GET", "/api/pipelines/abc/stages", None, ID_NOT_INT),
        ("POST", "/api/pipelines/0/trigger", None, id_below_1(0)),
        ("POST", "/api/pipelines/-1/cancel", None, id_below_1(-1)),
        (
            "POST",
            "/api/pipelines/1e3/retry",
            None,
            f'pipeline_id: {DIGITS_ONLY}, like 1000; got "1e3"',
        ),
        # a query's number is said as a body's is, not as pydantic's "Input should be …"
        ("GET", "/api/pipelines?page=abc", None, 'page: must be a whole number, like 2; got "abc"'),
        (
            "GET",
            "/api/pipelines?page_size=2.5",
            None,
            'page_size: must be a whole number, like 20; got "2.5"',
        ),
        (
            "GET",
            "/api/pipelines?page=2e1",
            None,
            f'page: {DIGITS_ONLY}, like 20; got "2e1"',
        ),
        (
            "GET",
            "/api/pipelines?page=" + "9" * 5000,
            None,
            "page: must be a whole number in range, like 2; got a number of 5,000 digits",
        ),
        (
            "GET",
            "/api/pipelines/1/logs?limit=all",
            None,
            'limit: must be a whole number, like 100; got "all"',
        ),
        (
            "GET",
            "/api/pipelines/1/logs?tail=maybe",
            None,
            'tail: must be true or false, not "maybe"',
        ),
        ("GET", "/api/pipelines?page=0", None, "page: must be at least 1; got 0"),
        (
            "GET",
            "/api/pipelines?page_size=-1",
            None,
            "page_size: must be at least 1; got -1",
        ),
        (
            "GET",
            "/api/pipelines?page=99999999999999999999",
            None,
            "page: must be at most 1,000,000; got a number of 20 digits",
        ),
        # pipeline 1 exists: the 422 is the page size's, not a 404
        (
            "GET",
            "/api/pipelines/1/runs?page_size=1000",
            None,
            "page_size: must be at most 100; got 1,000",
        ),
    ],
)
async def test_malformed_requests_are_a_422_naming_the_field(
    client: httpx.AsyncClient, method: str, path: str, body: str | None, message: str
) -> None:
    assert (await client.post("/api/pipelines", json={"name": "p"})).status_code == 201
    response = await client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()["message"]) == (422, message)
    assert await count_rows(Pipeline) == 1


async def test_a_422_lists_its_first_twenty_problems_and_counts_the_rest(
    client: httpx.AsyncClient,
) -> None:
    """Every problem was listed twice (message and detail): a body of 10,000 unknown fields made
    an answer many times its size. (More than 20 unknown fields are one problem now; 20 of them
    and a bad known field make 21.)"""
    extras = {f"extra{i:02d}": 1 for i in range(20)}
    response = await client.post("/api/pipelines", json={"name": "p", "trigger": "yes", **extras})
    listed = [f"extra{i:02d}" for i in range(19)]
    unknown = "unknown field; remove it (see /docs for the accepted fields)"
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": 'trigger: must be true or false, not "yes"; '
            + "; ".join(f"{name}: {unknown}" for name in listed)
            + "; and 1 more problem, not listed",
            "detail": [
                {"loc": ["body", "trigger"], "msg": 'must be true or false, not "yes"',
                 "type": "bool_type"},
                *(
                    {
                        "loc": ["body", name],
                        "msg": unknown,
                        "type": "extra_forbidden",
                    }
                    for name in listed
                ),
                {"loc": [], "msg": "and 1 more problem, not listed", "type": "more_problems"},
            ],
        },
    )  # fmt: skip
    five_over = {"name": "", "description": 5, "record_count": "x", "input_path": "",
                 "trigger": "yes", **extras}  # fmt: skip
    last = (await client.post("/api/pipelines", json=five_over)).json()["detail"][-1]
    assert last == {"loc": [], "msg": "and 5 more problems, not listed", "type": "more_problems"}
    twenty = {"name": "p", **extras}
    assert len((await client.post("/api/pipelines", json=twenty)).json()["detail"]) == 20
    assert await count_rows(Pipeline) == 0


async def test_ready_is_503_naming_the_fix_when_prefect_is_down(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 503
    checks = {check["name"]: check for check in response.json()["checks"]}
    assert list(checks) == ["database", "migrations", "data_dir", "prefect_api"]
    assert (checks["database"]["ok"], checks["migrations"]["ok"]) == (True, True)
    assert checks["prefect_api"]["ok"] is False
    assert checks["prefect_api"]["fix"] == (
        "start the Prefect server and set PREFECT_API_URL (now http://127.0.0.1:9/api) to its "
        "address in every process: API, worker and this one"
    )


async def test_schedule_input_is_validated_before_prefect(client: httpx.AsyncClient) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    cases = {
        '{"cron": "61 * * * *"}': "cron: '61 * * * *' is not a valid cron expression (five fields: minute hour day-of-month month day-of-week)",
        # croniter's sixth field is seconds: a run every second of the 6th, not daily at 06:00
        '{"cron": "0 0 6 * * *"}': "cron: '0 0 6 * * *' has 6 fields; a cron has five: minute hour day-of-month month day-of-week (no seconds)",
        '{"cron": "0 6 *"}': "cron: '0 6 *' is not a valid cron expression (five fields: minute hour day-of-month month day-of-week)",
        # valid syntax, but no 30th of February: Prefect's scheduler would fail on the deployment
        '{"cron": "0 0 30 2 *"}': "cron: '0 0 30 2 *' never fires: no date matches its day-of-month and month; change them",
        # croniter cannot pair a day-of-month with an nth weekday (it said "day-of-month and month")
        '{"cron": "0 0 1 * MON#2"}': "cron: '0 0 1 * MON#2' never fires: Prefect's cron reader (croniter) finds no date for a day-of-month (1) beside an nth weekday (MON#2); keep one of them and use * for the other",
        '{"cron": "0 6 * * *", "interval_seconds": 60}': "body: give exactly one of cron or interval_seconds",
        "{}": "body: give exactly one of cron or interval_seconds",
        '{"interval_seconds": 5}': "interval_seconds: must be at least 10; got 5",
        # strict: no number from a string or a boolean, no boolean from a string
        '{"interval_seconds": "3600"}': 'interval_seconds: must be a number without quotes, like 3600; got "3600"',
        '{"interval_seconds": 3600.0}': "interval_seconds: must be written as a whole number without a decimal point or exponent, like 3600; got 3600.0",
        '{"interval_seconds": 1e10}': "interval_seconds: must be written as a whole number without a decimal point or exponent, like 10000000000; got 10000000000.0",
        '{"interval_seconds": 1.5}': "interval_seconds: must be a whole number, like 3600; got 1.5",
        f'{{"cron": "{"*" * 121}"}}': "cron: must be at most 120 characters; got 121",
        f'{{"interval_seconds": 60, "timezone": "{"x" * 65}"}}': "timezone: must be at most 64 characters; got 65",
        '{"interval_seconds": true}': "interval_seconds: must be a whole number, like 3600; got true",
        '{"interval_seconds": 60, "active": "no"}': 'active: must be true or false, not "no"',
        '{"cron": "0 6 * * *", "timezone": "Mars/Olympus"}': "timezone: unknown timezone 'Mars/Olympus'; use an IANA name such as 'UTC' or 'Europe/Paris'",
        # a tzdata directory, and a name zoneinfo knows but Prefect does not
        '{"interval_seconds": 60, "timezone": "America"}': "timezone: unknown timezone 'America'; use an IANA name such as 'UTC' or 'Europe/Paris'",
        '{"cron": "0 6 * * *", "timezone": "posix/UTC"}': "timezone: unknown timezone 'posix/UTC'; use an IANA name such as 'UTC' or 'Europe/Paris'",
    }
    for body, message in cases.items():
        response = await client.put(
            "/api/pipelines/1/schedule", content=body, headers={"content-type": "application/json"}
        )
        assert (response.status_code, response.json()["message"]) == (422, message), body
    down = await client.put("/api/pipelines/1/schedule", json={"cron": "0 6 * * *"})
    assert down.status_code == 503
    assert (
        await client.put("/api/pipelines/9/schedule", json={"cron": "0 6 * * *"})
    ).status_code == 404
