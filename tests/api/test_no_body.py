"""Trigger, retry, cancel, delete and a schedule's pause, resume and removal take no body (SQLite
and PostgreSQL; Prefect played by the test): a body such as {"record_count": 5} was read by nobody,
and the run made 1,000 records all the same."""

from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.objects import DeploymentSchedule, FlowRun
from prefect.client.schemas.schedules import IntervalSchedule

from app.models import PipelineRun, Status
from app.pipeline import orchestrator, schedules
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
HOURLY = IntervalSchedule(interval=timedelta(hours=1))


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
        # an unpaired surrogate, escaped as JSON allows: echoed as sent (it was a 500: no UTF-8)
        ("trigger", '{"\\ud800": 1}', refused(TRIGGER, "\ud800")),
        ("cancel", '{"a\\udfffb": 1}', refused(CANCEL, "a\udfffb")),
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


DELETE = (
    "delete takes no body: it deletes the pipeline with its runs, their files and its schedule; "
    "send none"
)
CHANGE = "to change the schedule, set it again (PUT /api/pipelines/{id}/schedule)"
PAUSE = (
    "pause takes no body: it stops the pipeline's schedule making runs until resumed; "
    f"send none; {CHANGE}"
)
RESUME = (
    "resume takes no body: the pipeline's schedule makes runs again, as it was set; "
    f"send none; {CHANGE}"
)
DELETE_SCHEDULE = (
    "removing a schedule takes no body: it removes the pipeline's schedule and its runs still "
    "waiting; send none"
)
# the writes that act on the pipeline or its schedule as they are, beside trigger, retry, cancel
ACTS_AS_IT_IS = [
    pytest.param("DELETE", "", DELETE, id="delete"),
    pytest.param("POST", "/schedule/pause", PAUSE, id="pause"),
    pytest.param("POST", "/schedule/resume", RESUME, id="resume"),
    pytest.param("DELETE", "/schedule", DELETE_SCHEDULE, id="delete-schedule"),
]


@pytest.mark.parametrize(("method", "path", "why"), ACTS_AS_IT_IS)
async def test_delete_and_the_schedule_s_pause_resume_and_removal_refuse_a_body(
    client: httpx.AsyncClient, method: str, path: str, why: str
) -> None:
    """These read no body either: `{"cron": …}` sent to resume resumed the schedule as it was.
    The fix names the pipeline's own URL (it said `PUT /api/pipelines/{id}/schedule`)."""
    await add_pipeline("first")
    pipeline_id = await add_pipeline("nightly")
    why = why.replace("{id}", str(pipeline_id))
    assert "{" not in why
    url = f"/api/pipelines/{pipeline_id}{path}"
    for body, answer in [
        ('{"cron": "0 6 * * *"}', refused(why, "cron")),
        ('{"active": false, "timezone": "UTC"}', refused(why, "active", "timezone")),
        ("[]", refused(why)),
        ("cron=0 6 * * *", refused(why)),  # not JSON: the body as a whole
    ]:
        response = await client.request(method, url, content=body, headers=JSON)
        assert (response.status_code, response.json()) == (422, answer), body
    # refused before Prefect was asked (it is unreachable: a 503 otherwise), nothing deleted
    assert (await client.get(url.removesuffix(path))).status_code == 200


@pytest.fixture
def schedules_held(monkeypatch: pytest.MonkeyPatch) -> dict[int, DeploymentSchedule]:
    """A Prefect holding the pipelines' schedules (by pipeline id), to pause, resume and remove."""
    held: dict[int, DeploymentSchedule] = {}

    async def set_active(
        pipeline_id: int, active: bool, *, record_count: int
    ) -> DeploymentSchedule | None:
        if pipeline_id in held:
            held[pipeline_id] = held[pipeline_id].model_copy(update={"active": active})
        return held.get(pipeline_id)

    async def delete_schedule(pipeline_id: int) -> DeploymentSchedule | None:
        return held.pop(pipeline_id, None)

    monkeypatch.setattr(schedules, "set_pipeline_schedule_active", set_active)
    monkeypatch.setattr(schedules, "delete_pipeline_schedule", delete_schedule)
    return held


@pytest.mark.parametrize(
    "sent",
    [{}, {"content": b"{}", "headers": JSON}, {"content": b" \r\n"}],
    ids=["none", "empty-object", "blank"],
)
async def test_delete_and_the_schedule_s_writes_take_no_body_or_an_empty_object(
    client: httpx.AsyncClient, schedules_held: dict[int, DeploymentSchedule], sent: dict[str, Any]
) -> None:
    pipeline_id = await add_pipeline("nightly")
    url = f"/api/pipelines/{pipeline_id}"
    schedules_held[pipeline_id] = DeploymentSchedule(schedule=HOURLY, active=True)
    paused = await client.post(f"{url}/schedule/pause", **sent)
    assert (paused.status_code, paused.json()["active"]) == (200, False)
    resumed = await client.post(f"{url}/schedule/resume", **sent)
    assert (resumed.status_code, resumed.json()["active"]) == (200, True)
    removed = await client.request("DELETE", f"{url}/schedule", **sent)
    assert (removed.status_code, schedules_held) == (204, {})
    deleted = await client.request("DELETE", url, **sent)
    assert (deleted.status_code, (await client.get(url)).status_code) == (204, 404)
