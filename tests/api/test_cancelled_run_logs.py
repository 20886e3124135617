"""GET /api/pipelines/{id}/logs of a cancelled run, against a real Prefect server holding the
lines Prefect 3.8.8 sends for a cancel: its engine's `Finished in state Running()` and then its
worker's reload of the flow (pull steps) ended the tail, as if the run started again."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect import flow, task
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import LogCreate
from prefect.states import Cancelled, Cancelling, Running, State

from app.models import Status, utcnow
from tests.conftest import Configure
from tests.support.prefect_server import own_prefect_server
from tests.support.rows import add_pipeline, add_run

T = datetime(2026, 11, 27, 23, 19, 43, tzinfo=UTC)
FLOW, TASK, WORKER = "prefect.flow_runs", "prefect.task_runs", "prefect.flow_runs.worker"
PULL_STEPS = [
    "Running 1 deployment pull step(s)",
    "Executing deployment step: set_working_directory",
    "Deployment step 'set_working_directory' completed successfully",
    "All deployment steps completed successfully",
]
# (seconds after T, logger, message, of the task run): what a run cancelled in its ingest stage
# sent, as seen on a real stack
BEFORE_THE_END = [
    (0.0, WORKER, "Worker 'worker-1' submitting flow run"),
    *((0.1 + i / 100, FLOW, message) for i, message in enumerate(PULL_STEPS)),
    (0.4, FLOW, "Beginning flow run 'armored-chipmunk' for flow 'Data Pipeline'"),
    (4.3, TASK, "stage generate completed: 20000000 in, 20000000 out"),
    (6.2, TASK, "Crash detected! Execution was cancelled by the runtime environment."),
    (9.3, FLOW, "run 1 was cancelled: its files were removed, all but its rejects file"),
    (9.4, FLOW, "Flow run was cancelled."),
]
ENGINE_END = (9.401, FLOW, "Finished in state Running()")
RELOAD = [(12.2 + i / 100, FLOW, message) for i, message in enumerate(PULL_STEPS)]
CANCELLED_AT = T + timedelta(seconds=6)
END = {
    "id": "run-1-cancelled",
    # not the cancel's time (T + 6 s): the last line shown's, later, so the tail is in time order
    "timestamp": "2026-11-27T23:19:52.400000Z",
    "level": "INFO",
    "logger": "pipeline",
    "message": "run 1 cancelled through the API (not shown: Prefect's `Finished in state "
    "Running()` as its flow-run process stopped, and what its worker logged after it, loading "
    "the flow again to look for on_cancellation hooks)",
    "task_run_id": None,
}
# with no engine line to stand for (a minute on, none came), at the cancel's time (T + 6 s)
ALONE = {**END, "timestamp": "2026-11-27T23:19:49Z", "message": "run 1 cancelled through the API"}


@pytest.fixture(scope="module")
def prefect_server(tmp_root: Path) -> Iterator[str]:
    """A Prefect server of its own (no worker, no deployment): its API's URL."""
    with own_prefect_server(tmp_root / "cancelled-run-logs") as url:
        yield url


@pytest.fixture
async def prefect(prefect_server: str, configure: Configure) -> AsyncIterator[PrefectClient]:
    await configure(PREFECT_API_URL=prefect_server)
    async with PrefectClient(api=prefect_server) as client:
        yield client


@flow(name="cancelled-run-logs")
def _flow() -> None:
    pass


@task(name="ingest_data")
def _ingest() -> None:
    pass


async def _flow_run_with(
    prefect: PrefectClient,
    lines: list[tuple[float, str, str]],
    *,
    at: datetime = T,
    state: State | None = None,
) -> str:
    """A flow run with these lines in Prefect (seconds after `at`), its task run's lines with a
    task run id."""
    flow_run = await prefect.create_flow_run(_flow, state=state or Running())
    await _log(prefect, str(flow_run.id), lines, at=at)
    return str(flow_run.id)


async def _log(
    prefect: PrefectClient, flow_run_id: str, lines: list[tuple[float, str, str]], *, at: datetime
) -> None:
    """More lines of the flow run in Prefect, as its processes send them."""
    task_run_id = (await prefect.create_task_run(_ingest, UUID(flow_run_id), "k")).id
    await prefect.create_logs(
        [
            LogCreate(
                name=logger,
                level=20 if "Finished" not in message else 40,
                message=message,
                timestamp=at + timedelta(seconds=seconds),
                flow_run_id=UUID(flow_run_id),
                task_run_id=task_run_id if logger == TASK else None,
            )
            for seconds, logger, message in lines
        ]
    )


def _shown(body: list[dict[str, Any]]) -> list[object]:
    """Each of Prefect's lines as its time, logger and message; the service's own line whole."""
    return [
        line
        if line["logger"] == "pipeline"
        else (line["timestamp"], line["logger"], line["message"])
        for line in body
    ]


def _expected(lines: list[tuple[float, str, str]], *, at: datetime = T) -> list[object]:
    return [(_when(at, seconds), logger, message) for seconds, logger, message in lines]


def _when(at: datetime, seconds: float) -> str:
    """A time as the API writes it."""
    return (at + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def _cancelled_run(flow_run_id: str, *, at: datetime = CANCELLED_AT) -> int:
    pipeline_id = await add_pipeline("big", record_count=20_000_000)
    await add_run(
        pipeline_id,
        Status.CANCELLED,
        {},
        prefect_flow_run_id=flow_run_id,
        error="cancelled through the API",
        completed_at=at,
    )
    return pipeline_id


async def test_a_cancelled_runs_tail_ends_with_the_line_saying_so(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """It ended `Finished in state Running()` and four pull-step lines, read as a run that
    started again."""
    flow_run_id = await _flow_run_with(prefect, [*BEFORE_THE_END, ENGINE_END, *RELOAD])
    pipeline_id = await _cancelled_run(flow_run_id)
    url = f"/api/pipelines/{pipeline_id}/logs"

    tail = (await client.get(url, params={"tail": "true", "limit": 4})).json()
    assert _shown(tail) == [*_expected(BEFORE_THE_END[-3:]), END]

    whole = (await client.get(url)).json()
    assert _shown(whole) == [*_expected(BEFORE_THE_END), END]
    # paged either way, the same lines, the service's last, each once
    assert len(whole) == 11
    pages = [(await client.get(url, params={"limit": 3, "offset": o})).json() for o in (0, 3, 6, 9)]
    assert [line for page in pages for line in page] == whole
    assert (await client.get(url, params={"offset": 10})).json() == [END]
    assert (await client.get(url, params={"offset": 11})).json() == []
    back = [
        (await client.get(url, params={"tail": "true", "limit": 3, "offset": o})).json()
        for o in (9, 6, 3, 0)
    ]
    assert [line for page in back for line in page] == whole
    assert (await client.get(url, params={"tail": "true", "limit": 1})).json() == [END]


async def test_a_running_run_shows_every_line_prefect_has(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    flow_run_id = await _flow_run_with(prefect, [*BEFORE_THE_END, ENGINE_END, *RELOAD])
    pipeline_id = await add_pipeline("running")
    await add_run(pipeline_id, Status.RUNNING, {}, prefect_flow_run_id=flow_run_id)
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs")).json()
    assert _shown(body) == _expected([*BEFORE_THE_END, ENGINE_END, *RELOAD])


async def test_a_cancel_whose_process_is_still_stopping_shows_its_lines_so_far(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """The API marks the run cancelled at once; its process logs its stop seconds later: the
    service's line would come before them."""
    flow_run_id = await _flow_run_with(prefect, BEFORE_THE_END[:-2])
    pipeline_id = await _cancelled_run(flow_run_id, at=utcnow())
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs", params={"tail": "true"})).json()
    assert _shown(body) == _expected(BEFORE_THE_END[:-2])


async def test_a_run_cancelled_before_its_process_began_ends_with_the_line_alone(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """No engine line will come: a minute after the cancel, the service's line ends the tail."""
    flow_run_id = await _flow_run_with(prefect, BEFORE_THE_END[:1])
    pipeline_id = await _cancelled_run(flow_run_id)
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs", params={"tail": "true"})).json()
    assert _shown(body) == [
        *_expected(BEFORE_THE_END[:1]),
        ALONE,  # at the cancel's time, later than the line above it
    ]


# a flow run cancelled in its second attempt, run after its first one ended: that end is no end
FIRST_ATTEMPT = [
    (0.0, WORKER, "Worker 'worker-1' submitting flow run"),
    (0.4, FLOW, "Beginning flow run 'armored-chipmunk' for flow 'Data Pipeline'"),
    (2.0, TASK, "stage generate failed: OSError: [Errno 28] No space left on device"),
    (2.1, FLOW, "Finished in state AwaitingRetry('Retry 1/1 will start 5 second(s) from now')"),
]
SECOND_ATTEMPT = [
    (7.2, FLOW, "Beginning flow run 'armored-chipmunk' for flow 'Data Pipeline'"),
    (9.5, TASK, "stage generate completed: 20000000 in, 20000000 out"),
]
# after the cancel
STOPPED = [(13.9, FLOW, "run 1 was cancelled: its files were removed, all but its rejects file")]


async def test_an_earlier_attempts_end_is_not_the_cancelled_runs(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """The engine's last line in the final 50 was taken for the end, the first attempt's too:
    every line of the second was hidden until its own end came (forever, if it never did),
    and the service's line named `Finished in state AwaitingRetry(…)` as not shown."""
    at = utcnow().replace(microsecond=0) - timedelta(seconds=30)  # cancelled 19 s ago
    flow_run_id = await _flow_run_with(prefect, [*FIRST_ATTEMPT, *SECOND_ATTEMPT], at=at)
    pipeline_id = await _cancelled_run(flow_run_id, at=at + timedelta(seconds=11))
    url = f"/api/pipelines/{pipeline_id}/logs"

    # its process is still stopping: every line so far, and not yet the service's
    stopping = (await client.get(url, params={"tail": "true"})).json()
    assert _shown(stopping) == _expected([*FIRST_ATTEMPT, *SECOND_ATTEMPT], at=at)

    # its engine's end after the cancel, then its worker's reload: cut there
    engine_end = (14.0, FLOW, "Finished in state Running()")
    await _log(prefect, flow_run_id, [*STOPPED, engine_end, (16.0, FLOW, PULL_STEPS[0])], at=at)
    body = (await client.get(url)).json()
    assert _shown(body) == [
        *_expected([*FIRST_ATTEMPT, *SECOND_ATTEMPT, *STOPPED], at=at),
        {**END, "timestamp": _when(at, 13.9)},  # the last line shown's time, after the cancel
    ]
    pages = [(await client.get(url, params={"limit": 2, "offset": o})).json() for o in (0, 2, 4, 6)]
    assert [line for page in pages for line in page] == body


async def test_an_end_the_cancel_raced_is_shown(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """A `Finished in state Completed()` logged before the cancel was cut off as its end, and
    named as not shown; a minute on, the service's line follows every line."""
    lines = [*BEFORE_THE_END[:4], (6.0, FLOW, "Finished in state Completed()")]
    flow_run_id = await _flow_run_with(prefect, lines)
    pipeline_id = await _cancelled_run(flow_run_id, at=T + timedelta(seconds=6.5))
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs")).json()
    assert _shown(body) == [
        *_expected(lines),
        {**ALONE, "timestamp": "2026-11-27T23:19:49.500000Z"},  # the cancel's
    ]


async def test_a_cut_at_the_first_of_the_last_50_lines_is_stamped_by_the_line_above_it(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    reload = [(12.0 + i / 100, WORKER, f"worker line {i}") for i in range(49)]
    flow_run_id = await _flow_run_with(prefect, [*BEFORE_THE_END, ENGINE_END, *reload])
    pipeline_id = await _cancelled_run(flow_run_id)
    url = f"/api/pipelines/{pipeline_id}/logs"
    tail = (await client.get(url, params={"tail": "true", "limit": 2})).json()
    assert _shown(tail) == [*_expected(BEFORE_THE_END[-1:]), END]


# a run whose process was killed in its ingest stage (SIGKILL, 5 s after the cancel's SIGTERM,
# a Polars query still running): its engine never logged `Finished in state …`
KILLED = [*BEFORE_THE_END[:4], (6.2, TASK, BEFORE_THE_END[6][2])]  # `Crash detected! …`
KILLED_END = {
    **END,
    "message": "run 1 cancelled through the API (not shown: Prefect's `Running 1 deployment pull "
    "step(s)` and what followed it, logged by its worker loading the flow again to look for "
    "on_cancellation hooks once its flow-run process was stopped)",
}


async def test_a_run_killed_before_its_engine_logged_its_end_is_cut_at_its_workers_reload(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """The cut waited for `Finished in state …`, which a killed process never logs: its tail
    showed the worker's reload (`Running 1 deployment pull step(s)` … `All deployment steps
    completed successfully`) as if the run started again, and a minute on, the service's line
    after it. Now the reload is cut as soon as it is there."""
    at = utcnow().replace(microsecond=0) - timedelta(seconds=13)  # cancelled 7 s ago
    flow_run_id = await _flow_run_with(prefect, [*KILLED, *RELOAD], at=at)
    pipeline_id = await _cancelled_run(flow_run_id, at=at + timedelta(seconds=6))
    url = f"/api/pipelines/{pipeline_id}/logs"
    end = {**KILLED_END, "timestamp": _when(at, 6.2)}  # the last line shown's, after the cancel

    whole = (await client.get(url)).json()
    assert _shown(whole) == [*_expected(KILLED, at=at), end]
    tail = (await client.get(url, params={"tail": "true", "limit": 3})).json()
    assert tail == whole[-3:]
    # paged either way, the same lines, the service's last, each once
    pages = [(await client.get(url, params={"limit": 2, "offset": o})).json() for o in (0, 2, 4)]
    assert [line for page in pages for line in page] == whole
    assert (await client.get(url, params={"offset": 6})).json() == []
    back = [
        (await client.get(url, params={"tail": "true", "limit": 2, "offset": o})).json()
        for o in (4, 2, 0)
    ]
    assert [line for page in back for line in page] == whole


async def test_a_load_of_the_flow_before_its_process_logged_is_its_start_not_a_reload(
    client: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """A run cancelled as its process started: its own pull steps come after the cancel, and the
    lines after them are the run's."""
    at = utcnow().replace(microsecond=0) - timedelta(seconds=5)  # cancelled 5 s ago
    started = [
        (0.0, WORKER, "Worker 'worker-1' submitting flow run"),
        *((0.1 + i / 100, FLOW, message) for i, message in enumerate(PULL_STEPS)),
        (0.4, FLOW, "Beginning flow run 'armored-chipmunk' for flow 'Data Pipeline'"),
    ]
    flow_run_id = await _flow_run_with(prefect, started, at=at)
    pipeline_id = await _cancelled_run(flow_run_id, at=at)
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs")).json()
    assert _shown(body) == _expected(started, at=at)  # its process may still be stopping


# a run cancelled before its flow-run process logged anything: its worker stopped the process
# (SIGTERM), loaded the flow for on_cancellation hooks, set Cancelled, and then said why the
# process had exited
STOPPED_UNSTARTED = [
    (0.0, WORKER, "Worker 'worker-1' submitting flow run"),
    *((1.2 + i / 100, FLOW, message) for i, message in enumerate(PULL_STEPS)),
    (
        1.5,
        WORKER,
        "If this was caused by cancellation, no action is needed. Otherwise, check for "
        "infrastructure scaling events or deployment rollovers.",
    ),
]


@pytest.mark.parametrize(
    ("state", "closed"),
    [
        (Cancelled(), True),  # its worker is done with it: nothing more will come
        (Cancelling(), False),  # its worker may still be stopping it
    ],
)
async def test_a_run_stopped_before_its_process_logged_is_closed_once_prefect_has_cancelled_it(
    client: httpx.AsyncClient, prefect: PrefectClient, state: State, closed: bool
) -> None:
    """Its tail ended with the worker's `If this was caused by cancellation, …` for a minute."""
    at = utcnow().replace(microsecond=0) - timedelta(seconds=3)  # cancelled 2 s ago
    flow_run_id = await _flow_run_with(prefect, STOPPED_UNSTARTED, at=at, state=state)
    pipeline_id = await _cancelled_run(flow_run_id, at=at + timedelta(seconds=1))
    body = (await client.get(f"/api/pipelines/{pipeline_id}/logs", params={"tail": "true"})).json()
    end = {**ALONE, "timestamp": _when(at, 1.5)}  # the last line's, after the cancel
    assert _shown(body) == [*_expected(STOPPED_UNSTARTED, at=at), *([end] if closed else [])]
