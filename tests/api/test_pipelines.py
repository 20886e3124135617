"""The pipelines API on a real database (SQLite and PostgreSQL), with Prefect really unreachable."""

import asyncio

import httpx
import pytest

from app import idempotency, service
from app.db import get_sessionmaker
from app.models import Pipeline, PipelineRun, PipelineStage, Status
from app.pipeline import orchestrator
from app.pipeline.status import new_stage_rows
from tests.conftest import Configure
from tests.support.rows import count_rows


async def test_create_returns_the_pipeline_without_a_run(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/pipelines", json={"name": "  demo  ", "record_count": 250, "description": "d"}
    )
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("id", "name", "description", "record_count", "status")} == {
        "id": 1,
        "name": "demo",
        "description": "d",
        "record_count": 250,
        "status": "created",
    }
    assert body["latest_run"] is None
    assert (await client.get("/api/pipelines/1")).json() == body


async def test_record_count_defaults_to_1000(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/pipelines", json={"name": "x"})
    assert response.json()["record_count"] == 1000


async def test_bad_input_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    cases = {
        '{"name": "x", "record_count": 0}': "record_count: must be at least 1; got 0",
        '{"name": "x", "record_count": 50000001}': "record_count: must be at most 50,000,000 (PIPELINE_MAX_RECORD_COUNT); got 50,000,001",
        '{"name": "x", "record_count": "many"}': 'record_count: must be a whole number, like 1000; got "many"',
        '{"name": "x", "record_count": 1.5}': "record_count: must be a whole number, like 1000; got 1.5",
        # a JSON number past 18 digits is said by its length, not echoed (it may have 4,300)
        f'{{"name": "x", "record_count": {"9" * 4000}}}': "record_count: must be at most 50,000,000 (PIPELINE_MAX_RECORD_COUNT); got a number of 4,000 digits",
        f'{{"name": "x", "record_count": -{"9" * 4000}}}': "record_count: must be at least 1; got a negative number of 4,000 digits",
        # the dashboard's form sends its field's text: a negative one is told the bound, as -5 is
        '{"name": "x", "record_count": "-5"}': "record_count: must be at least 1; got -5",
        '{"name": "x", "record_count": -5}': "record_count: must be at least 1; got -5",
        # strict: a boolean is no count, and "yes" no boolean (both were taken: true made 1 record)
        '{"name": "x", "record_count": true}': "record_count: must be a whole number, like 1000; got true",
        # 1000.0 is a whole number: written as a JSON integer, it is taken
        '{"name": "x", "record_count": 1000.0}': "record_count: must be written as a whole number without a decimal point or exponent, like 1000; got 1000.0",
        '{"name": "x", "record_count": 1e3}': "record_count: must be written as a whole number without a decimal point or exponent, like 1000; got 1000.0",
        '{"name": "x", "record_count": "1000.0"}': 'record_count: must be written as a whole number without a decimal point or exponent, like 1000; got "1000.0"',
        '{"name": "x", "trigger": "yes"}': 'trigger: must be true or false, not "yes"',
        '{"name": "x", "trigger": 1}': "trigger: must be true or false, not 1",
        '{"name": "   "}': "name: must not be blank; give the pipeline a name",
        '{"record_count": 5}': "name: Field required",
        '{"name": "x", "colour": "red"}': "colour: unknown field; remove it (see /docs for the accepted fields)",
        # the field's name escaped: a right-to-left override went raw into the message
        '{"name": "x", "\\u0000\\u202eabc": 1}': "\\x00\\u202eabc: unknown field; remove it (see /docs for the accepted fields)",
        '{"name": "x",': "body: not valid JSON (error at character 13)",
        # PostgreSQL cannot store NUL in text: refused before the database, naming the field
        '{"name": "a\\u0000b"}': "name: holds the control character U+0000 (NUL) at position 2; remove it (a name is one line of printable text)",
        '{"name": "x", "description": "\\u0000"}': "description: holds the control character U+0000 (NUL) at position 1; remove it (tabs and line breaks are fine)",
    }
    for body, message in cases.items():
        response = await client.post(
            "/api/pipelines", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, body
        assert response.json()["message"] == message, body
    assert await count_rows(Pipeline) == 0


async def test_record_count_as_the_dashboard_sends_it(client: httpx.AsyncClient) -> None:
    """The create form sends its number field's text: digits are still a count."""
    response = await client.post("/api/pipelines", json={"name": "x", "record_count": "250"})
    assert (response.status_code, response.json()["record_count"]) == (201, 250)


async def test_a_body_that_cannot_be_read_as_json_is_a_422_saying_why(
    client: httpx.AsyncClient,
) -> None:
    """FastAPI answered these with a 400 "There was an error parsing the body", naming nothing."""
    latin1 = (
        "body: not UTF-8 (its Content-Type says charset=latin-1); send the JSON encoded as UTF-8"
    )
    cases = [
        (
            "application/json",
            b'{"name": "\xff"}',
            "body: not UTF-8; send the JSON encoded as UTF-8",
        ),
        ("application/json; charset=latin-1", '{"name": "été"}'.encode("latin-1"), latin1),
        (
            "application/json",
            b"[" * 100_000 + b"]" * 100_000,
            "body: nested too deeply; send a JSON object of the fields (see /docs)",
        ),
    ]
    for content_type, body, message in cases:
        response = await client.post(
            "/api/pipelines", content=body, headers={"content-type": content_type}
        )
        problem = {
            "loc": ["body"],
            "msg": message.removeprefix("body: "),
            "type": "json_too_deep" if "deeply" in message else "json_not_utf8",
        }
        assert (response.status_code, response.json()) == (
            422,
            {"message": message, "detail": [problem]},
        )
    assert await count_rows(Pipeline) == 0


async def test_unknown_or_invalid_id(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/pipelines/42")).status_code == 404
    assert (await client.get("/api/pipelines/42")).json() == {
        "message": "pipeline 42 not found",
        "detail": "pipeline 42 not found",
    }
    assert (await client.post("/api/pipelines/42/trigger")).status_code == 404
    assert (await client.get("/api/pipelines/42/stages")).status_code == 404
    response = await client.get("/api/pipelines/-1")
    assert response.status_code == 422
    assert response.json()["message"] == "pipeline_id: must be at least 1; got -1"


async def test_list_pages_newest_first_and_filters_by_status(client: httpx.AsyncClient) -> None:
    for number in range(1, 6):
        await client.post("/api/pipelines", json={"name": f"p{number}"})
    async with get_sessionmaker()() as session:
        session.add(PipelineRun(pipeline_id=2, record_count=1, status=Status.COMPLETED))
        session.add(PipelineRun(pipeline_id=3, record_count=1, status=Status.COMPLETED))
        session.add(PipelineRun(pipeline_id=3, record_count=1, status=Status.FAILED))
        await session.commit()

    page = (await client.get("/api/pipelines", params={"page_size": 2, "page": 2})).json()
    assert [item["name"] for item in page["items"]] == ["p3", "p2"]
    assert (page["total"], page["page"], page["page_size"]) == (5, 2, 2)

    completed = (await client.get("/api/pipelines", params={"status": "completed"})).json()
    assert [item["name"] for item in completed["items"]] == ["p2"]  # p3's latest run failed
    failed = (await client.get("/api/pipelines", params={"status": "failed"})).json()
    assert [item["name"] for item in failed["items"]] == ["p3"]
    created = (await client.get("/api/pipelines", params={"status": "created"})).json()
    assert [item["name"] for item in created["items"]] == ["p5", "p4", "p1"]

    too_big = await client.get("/api/pipelines", params={"page_size": 101})
    assert too_big.status_code == 422
    assert too_big.json()["message"] == "page_size: must be at most 100; got 101"
    bad_status = await client.get("/api/pipelines", params={"status": "sleeping"})
    assert bad_status.status_code == 422


async def test_trigger_with_prefect_down_is_a_503_and_leaves_no_rows(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    response = await client.post("/api/pipelines/1/trigger")
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
        "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
    )
    assert (await count_rows(PipelineRun), await count_rows(PipelineStage)) == (0, 0)
    assert (await client.get("/api/pipelines/1")).json()["status"] == "created"


async def test_create_and_trigger_with_prefect_down_creates_nothing(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    """The 503 names the Prefect API's address, never credentials in its URL."""
    await configure(PREFECT_API_URL="http://ops:s3cret@127.0.0.1:9/api?token=t")
    response = await client.post("/api/pipelines", json={"name": "p", "trigger": True})
    assert (response.status_code, response.json()["detail"]) == (
        503,
        "Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
        "Start the server (make up, or prefect server start) and check PREFECT_API_URL.",
    )
    assert (
        await count_rows(Pipeline),
        await count_rows(PipelineStage),
        await count_rows(PipelineRun),
    ) == (
        0,
        0,
        0,
    )


async def test_a_repeated_create_and_trigger_answers_with_the_first_requests_run(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeat (same Idempotency-Key) came while the first request was creating its flow run:
    it waits for that run, never answering "created" with no run."""
    monkeypatch.setattr(idempotency, "WAIT_FOR_WINNER_SECONDS", 0.3)
    async with get_sessionmaker()() as session:
        pipeline = Pipeline(name="p", record_count=10, idempotency_key="k")
        run = PipelineRun(
            pipeline=pipeline, record_count=10, status=Status.PENDING, stages=new_stage_rows()
        )
        session.add_all([pipeline, run])
        await session.commit()

    async def repeat() -> httpx.Response:
        return await client.post(
            "/api/pipelines", json={"name": "p", "trigger": True}, headers={"Idempotency-Key": "k"}
        )

    still_starting = await repeat()
    starting = (
        "the first request with this Idempotency-Key is still starting its run; "
        "repeat this request in a few seconds"
    )
    assert (still_starting.status_code, still_starting.json()) == (
        409,
        {"message": starting, "detail": starting},
    )
    async with get_sessionmaker()() as session:
        started = await session.get(PipelineRun, run.id)
        assert started is not None
        started.prefect_flow_run_id = "fr-1"
        await session.commit()
    answered = (await repeat()).json()
    assert (answered["id"], answered["status"], answered["latest_run"]["id"]) == (
        pipeline.id,
        "pending",
        run.id,
    )
    assert answered["latest_run"]["prefect_flow_run_id"] == "fr-1"


async def test_a_repeat_after_the_first_trigger_failed_is_a_503(client: httpx.AsyncClient) -> None:
    """The first request's trigger failed and removed its pipeline while the repeat waited."""
    async with get_sessionmaker()() as session:
        with pytest.raises(orchestrator.PrefectUnavailableError, match="could not start its run"):
            await service.first_run(
                session=session, pipeline=Pipeline(id=999), trigger=True, created=False
            )


async def test_stages_of_a_pipeline_without_runs_is_empty(client: httpx.AsyncClient) -> None:
    await client.post("/api/pipelines", json={"name": "p"})
    assert (await client.get("/api/pipelines/1/stages")).json() == []


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}


async def test_a_trigger_key_whose_run_never_reached_prefect_can_be_used_again(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first trigger's process stopped before Prefect had the flow run, and the watchdog
    failed the run: repeating the request makes the run (here Prefect is down: a 503), not a
    24-hour "still being processed"."""
    monkeypatch.setattr(idempotency, "WAIT_FOR_WINNER_SECONDS", 0.3)
    pipeline_id = (await client.post("/api/pipelines", json={"name": "p"})).json()["id"]
    async with get_sessionmaker()() as session:
        stranded = PipelineRun(
            pipeline_id=pipeline_id,
            record_count=10,
            status=Status.FAILED,
            error="the trigger never reached Prefect",
            stages=new_stage_rows(),
            idempotency_key=idempotency.run_key(pipeline_id, "nightly"),
        )
        session.add(stranded)
        await session.commit()
    response = await client.post(
        f"/api/pipelines/{pipeline_id}/trigger", headers={"Idempotency-Key": "nightly"}
    )
    assert response.status_code == 503, response.text
    async with get_sessionmaker()() as session:
        kept = await session.get(PipelineRun, stranded.id)
        assert kept is not None
        assert (kept.status, kept.idempotency_key) == (Status.FAILED, None)
    assert await count_rows(PipelineRun) == 1


async def test_a_prefect_server_refusing_this_client_is_a_503_naming_its_credentials_setting(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    """Prefect's 401 escaped as its own error: a 500 "internal error", and its message, with the
    URL's user:password, went into the span and the log."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await configure(PREFECT_API_URL=f"http://ops:s3cret@127.0.0.1:{port}/api")
        response = await client.post("/api/pipelines", json={"name": "p", "trigger": True})
    finally:
        server.close()
    assert (response.status_code, response.json()["detail"]) == (
        503,
        f"Prefect API at http://127.0.0.1:{port}/api refused this service's request (401); if "
        "the server requires authentication, set PREFECT_API_AUTH_STRING (or PREFECT_API_KEY) "
        "in every process as the server expects",
    )
    assert await count_rows(Pipeline) == 0
