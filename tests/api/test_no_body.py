"""Trigger, retry and cancel take no body (SQLite and PostgreSQL; Prefect played by the test): a
body such as {"record_count": 5} was read by nobody, and the run made 1,000 records all the same."""

from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun

from app.models import PipelineRun, Status
from app.pipeline import orchestrator
from tests.support.rows import add_pipeline, add_run, count_rows, read_run

TRIGGER = (
    "trigger takes no body: the run uses the pipeline's own settings; send none, or, to run "
    "with other settings, create a pipeline with them (POST /api/pipelines)"
)
RETRY = (
    "retry takes no body: the new run uses the pipeline's own settings; send none, or, to run "
    "with other settings, create a pipeline with them (POST /api/pipelines)"
)
CANCEL = "cancel takes no body: it cancels every run of the pipeline in flight; send none"
JSON = {"content-type": "application/json"}


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A Prefect that makes each flow run it is asked for; the record counts it was asked for."""
    asked: list[int] = []

    async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        asked.append(record_count)
        return FlowRun(id=UUID(int=run_id), flow_id=UUID(int=99), name=f"run-{run_id}")

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)
    return asked


def refused(why: str, *fields: str) -> dict[str, Any]:
    """The 422 body naming each field sent (or `body`) with `why`."""
    locs = [["body", field] for field in fields] or [["body"]]
    return {
        "message": "; ".join(f"{loc[-1]}: {why}" for loc in locs),
        "detail": [{"loc": loc, "msg": why, "type": "body_not_taken"} for loc in locs],
    }


async def test_a_body_is_refused_naming_each_field(
    client: httpx.AsyncClient, prefect: list[int]
) -> None:
    pipeline_id = await add_pipeline("nightly")
    await add_run(pipeline_id, Status.FAILED, {}, error="boom")
    base = f"/api/pipelines/{pipeline_id}"
    cases = [
        ("trigger", '{"record_count": 5}', refused(TRIGGER, "record_count")),
        ("trigger", '{"record_count": 5, "name": "x"}', refused(TRIGGER, "record_count", "name")),
        ("trigger", "[]", refused(TRIGGER)),
        ("trigger", "null", refused(TRIGGER)),
        ("trigger", "record_count=5", refused(TRIGGER)),  # not JSON: the body as a whole
        ("retry", '{"record_count": 5}', refused(RETRY, "record_count")),
        ("cancel", '{"run_id": 3}', refused(CANCEL, "run_id")),
    ]
    for action, body, answer in cases:
        response = await client.post(f"{base}/{action}", content=body, headers=JSON)
        assert (response.status_code, response.json()) == (422, answer), (action, body)
    # refused before anything was done: no run made, none cancelled, Prefect never asked
    assert (await count_rows(PipelineRun), prefect) == (1, [])


async def test_many_fields_are_one_problem(client: httpx.AsyncClient) -> None:
    pipeline_id = await add_pipeline("nightly")
    body = {f"f{i}": i for i in range(25)}
    response = await client.post(f"/api/pipelines/{pipeline_id}/trigger", json=body)
    why = f"25 fields ('f0', 'f1', 'f2', …): {TRIGGER}"
    assert (response.status_code, response.json()) == (
        422,
        {
            "message": f"body: {why}",
            "detail": [{"loc": ["body"], "msg": why, "type": "body_not_taken"}],
        },
    )


async def test_a_long_field_name_is_cut_short(client: httpx.AsyncClient) -> None:
    """A 300-character name was echoed whole, in `loc` and the message; uploads cut it at 64."""
    pipeline_id = await add_pipeline("nightly")
    for action, why in (("trigger", TRIGGER), ("retry", RETRY), ("cancel", CANCEL)):
        response = await client.post(
            f"/api/pipelines/{pipeline_id}/{action}", json={"k" * 300: 1, "x" * 64: 2}
        )
        assert (response.status_code, response.json()) == (
            422,
            refused(why, "k" * 63 + "…", "x" * 64),  # 64 characters are shown whole
        ), action


@pytest.mark.parametrize(
    "sent",
    [
        {},  # no body at all (Content-Length: 0, as curl -X POST sends it)
        {"content": b"", "headers": JSON},
        {"content": b"{}", "headers": JSON},  # an object asking for nothing
        {"content": b" {  }\n", "headers": JSON},
        {"content": b"\r\n"},
    ],
)
async def test_no_body_or_an_empty_object_is_accepted(
    client: httpx.AsyncClient, prefect: list[int], sent: dict[str, Any]
) -> None:
    pipeline_id = await add_pipeline("nightly", record_count=1000)
    base = f"/api/pipelines/{pipeline_id}"
    triggered = await client.post(f"{base}/trigger", **sent)
    assert (triggered.status_code, triggered.json()["run_id"]) == (202, 1)
    await add_run(pipeline_id, Status.FAILED, {}, error="boom")
    retried = await client.post(f"{base}/retry", **sent)
    assert (retried.status_code, retried.json()["run_id"]) == (202, 3)
    assert prefect == [1000, 1000]  # the pipeline's own record count, both times
    assert (await read_run(1)).record_count == 1000

    other = await add_pipeline("waiting")
    pending = await add_run(other, Status.PENDING, {})  # no flow run yet: Prefect is not asked
    cancelled = await client.post(f"/api/pipelines/{other}/cancel", **sent)
    assert (cancelled.status_code, cancelled.json()["id"]) == (202, pending)
    assert (await read_run(pending)).status == Status.CANCELLED
