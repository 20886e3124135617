"""`pipeline cancel` names every run it cancelled: the API cancels all the runs in flight and
answers with the newest only ("run 44 of pipeline 26 cancelled" when 43 was cancelled too)."""

import json

import httpx
import pytest
from sqlalchemy import select, update

from app.db import get_sessionmaker
from app.models import PipelineRun, Status, utcnow
from app.pipeline.status import new_stage_rows
from tests.cli.conftest import AppTransport, Cli
from tests.support.rows import add_pipeline, add_run


async def _statuses(pipeline_id: int) -> dict[int, Status]:
    async with get_sessionmaker()() as session:
        rows = await session.execute(
            select(PipelineRun.id, PipelineRun.status).where(PipelineRun.pipeline_id == pipeline_id)
        )
        return {run_id: status for run_id, status in rows.tuples()}


async def _ended_on_its_own(run_id: int) -> None:
    async with get_sessionmaker()() as session:
        ended = update(PipelineRun).where(PipelineRun.id == run_id)
        await session.execute(ended.values(status=Status.COMPLETED, completed_at=utcnow()))
        await session.commit()


def _requests(transport: AppTransport) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in transport.sent]


async def test_every_run_cancelled_is_named(cli: Cli, transport: AppTransport) -> None:
    first = await add_pipeline("big")
    await add_run(first, Status.COMPLETED, {})
    for status in (Status.RUNNING, Status.RUNNING, Status.PENDING):
        await add_run(first, status, {})
    second = await add_pipeline("two")
    await add_run(second, Status.RUNNING, {})
    await add_run(second, Status.PENDING, {})

    three = await cli("cancel", str(first))
    assert (three.exit_code, three.stdout, three.stderr) == (
        0,
        "runs 2, 3 and 4 of pipeline 1 cancelled\n",
        "",
    )
    assert await _statuses(first) == {
        1: Status.COMPLETED,
        2: Status.CANCELLED,
        3: Status.CANCELLED,
        4: Status.CANCELLED,
    }
    two = await cli("cancel", str(second))
    assert (two.exit_code, two.stdout, two.stderr) == (
        0,
        "runs 5 and 6 of pipeline 2 cancelled\n",
        "",
    )
    # nothing left in flight: the API answers with the run cancelled last, as before
    again = await cli("cancel", str(first))
    assert (again.exit_code, again.stdout, again.stderr) == (
        0,
        "run 4 of pipeline 1 cancelled\n",
        "",
    )
    assert _requests(transport) == [
        "GET /api/pipelines/1",
        "GET /api/pipelines/1/runs",
        "POST /api/pipelines/1/cancel",
        "GET /api/pipelines/1/runs",
        "GET /api/pipelines/2",
        "GET /api/pipelines/2/runs",
        "POST /api/pipelines/2/cancel",
        "GET /api/pipelines/2/runs",
        "GET /api/pipelines/1",  # none in flight: no runs to read
        "POST /api/pipelines/1/cancel",
    ]


async def test_json_is_the_apis_answer_unchanged(cli: Cli, transport: AppTransport) -> None:
    pipeline_id = await add_pipeline("big")
    await add_run(pipeline_id, Status.RUNNING, {})
    await add_run(pipeline_id, Status.PENDING, {})
    result = await cli("cancel", str(pipeline_id), "--json")
    answer = json.loads(result.stdout)
    assert (result.exit_code, answer["id"], answer["status"]) == (0, 2, "cancelled")
    assert _requests(transport) == ["POST /api/pipelines/1/cancel"]


async def test_a_run_that_ended_on_its_own_before_the_cancel_is_not_named(
    cli: Cli, transport: AppTransport
) -> None:
    pipeline_id = await add_pipeline("big")
    for status in (Status.RUNNING, Status.RUNNING, Status.PENDING):
        await add_run(pipeline_id, status, {})

    def before(request: httpx.Request) -> None:
        if request.method == "POST":  # run 1 completes between the CLI's read and the cancel
            transport.on_loop(_ended_on_its_own(1))

    transport.before = before
    result = await cli("cancel", str(pipeline_id))
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "runs 2 and 3 of pipeline 1 cancelled\n",
        "",
    )
    assert await _statuses(pipeline_id) == {
        1: Status.COMPLETED,
        2: Status.CANCELLED,
        3: Status.CANCELLED,
    }


async def test_runs_in_flight_past_the_first_page_are_found(cli: Cli) -> None:
    pipeline_id = await add_pipeline("long")
    await add_run(pipeline_id, Status.RUNNING, {})  # run 1, under 100 newer ones
    async with get_sessionmaker()() as session:
        session.add_all(
            PipelineRun(
                pipeline_id=pipeline_id,
                status=Status.COMPLETED,
                record_count=1000,
                completed_at=utcnow(),
                stages=new_stage_rows(),
            )
            for _ in range(100)
        )
        await session.commit()
    await add_run(pipeline_id, Status.PENDING, {})  # run 102
    result = await cli("cancel", str(pipeline_id))
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "runs 1 and 102 of pipeline 1 cancelled\n",
        "",
    )


async def test_a_run_ending_before_the_runs_are_read_stops_no_cancel_for_long(
    cli: Cli, transport: AppTransport
) -> None:
    """One of the 3 runs in flight ended before the runs were read: the 2 left never made 3,
    and every page of the pipeline's runs was read before the cancel was sent."""
    pipeline_id = await add_pipeline("scheduled")
    async with get_sessionmaker()() as session:
        session.add_all(
            PipelineRun(
                pipeline_id=pipeline_id,
                status=Status.COMPLETED,
                record_count=1000,
                completed_at=utcnow(),
                stages=new_stage_rows(),
            )
            for _ in range(550)
        )
        await session.commit()
    for status in (Status.RUNNING, Status.RUNNING, Status.PENDING):  # runs 551 to 553
        await add_run(pipeline_id, status, {})

    def before(request: httpx.Request) -> None:
        if request.url.path.endswith("/runs") and len(transport.sent) == 2:
            transport.on_loop(_ended_on_its_own(551))

    transport.before = before
    result = await cli("cancel", str(pipeline_id))
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "runs 552 and 553 of pipeline 1 cancelled\n",
        "",
    )
    # the newest 300 runs at most (of 553: 6 pages), then the cancel, then its check
    assert [(f"{r.method} {r.url.path}", r.url.params.get("page")) for r in transport.sent] == [
        ("GET /api/pipelines/1", None),
        ("GET /api/pipelines/1/runs", "1"),
        ("GET /api/pipelines/1/runs", "2"),
        ("GET /api/pipelines/1/runs", "3"),
        ("POST /api/pipelines/1/cancel", None),
        ("GET /api/pipelines/1/runs", "1"),
    ]


def _unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        503,
        json={"message": "the database is unreachable; retry in a moment", "detail": "x"},
        request=request,
    )


async def test_runs_that_cannot_be_read_never_stop_the_cancel(
    cli: Cli, transport: AppTransport
) -> None:
    pipeline_id = await add_pipeline("big")
    await add_run(pipeline_id, Status.RUNNING, {})
    await add_run(pipeline_id, Status.PENDING, {})

    def read_fails(failing: str) -> None:
        def before(request: httpx.Request) -> httpx.Response | None:
            sent = f"{request.method} {request.url.path}"
            return _unavailable(request) if sent == failing else None

        transport.before = before

    # before the cancel: the API's answer alone is reported
    read_fails("GET /api/pipelines/1")
    unread_before = await cli("cancel", str(pipeline_id))
    assert (unread_before.exit_code, unread_before.stdout, unread_before.stderr) == (
        0,
        "run 2 of pipeline 1 cancelled\n",
        "",
    )
    assert await _statuses(pipeline_id) == {1: Status.CANCELLED, 2: Status.CANCELLED}

    # after the cancel: done, said, and what could not be checked on stderr
    other = await add_pipeline("other")
    await add_run(other, Status.RUNNING, {})
    await add_run(other, Status.RUNNING, {})
    runs_read = 0

    def second_read_fails(request: httpx.Request) -> httpx.Response | None:
        nonlocal runs_read
        if request.url.path == f"/api/pipelines/{other}/runs":
            runs_read += 1
            return _unavailable(request) if runs_read == 2 else None
        return None

    transport.before = second_read_fails
    unread_after = await cli("cancel", str(other))
    assert (unread_after.exit_code, unread_after.stdout, unread_after.stderr) == (
        0,
        "run 4 of pipeline 2 cancelled\n",
        "could not read which other runs of pipeline 2 were cancelled: the database is "
        "unreachable; retry in a moment; see them with `pipeline show 2`\n",
    )
    assert await _statuses(other) == {3: Status.CANCELLED, 4: Status.CANCELLED}


@pytest.mark.parametrize(
    ("interrupted", "expected"),
    [
        # nothing sent yet: interrupted, nothing more
        ("GET /api/pipelines/1", (130, "", "interrupted\n")),
        (
            "POST /api/pipelines/1/cancel",
            (
                130,
                "",
                "error: interrupted before the API at http://cli.test answered POST "
                "/api/pipelines/1/cancel; the request may still complete; check with "
                "`pipeline show 1`\n",
            ),
        ),
        # the cancel is done: what the API answered, then interrupted
        ("GET /api/pipelines/1/runs#2", (130, "run 2 of pipeline 1 cancelled\n", "interrupted\n")),
    ],
)
async def test_ctrl_c_says_what_was_done(
    cli: Cli, transport: AppTransport, interrupted: str, expected: tuple[int, str, str]
) -> None:
    pipeline_id = await add_pipeline("big")
    await add_run(pipeline_id, Status.RUNNING, {})
    await add_run(pipeline_id, Status.PENDING, {})
    seen: list[str] = []

    def before(request: httpx.Request) -> None:
        sent = f"{request.method} {request.url.path}"
        seen.append(sent)
        if interrupted in (sent, f"{sent}#{seen.count(sent)}"):
            raise KeyboardInterrupt

    transport.before = before
    result = await cli("cancel", str(pipeline_id))
    assert (result.exit_code, result.stdout, result.stderr) == expected
