"""Datadog end to end, asserted on what Datadog's own test agent and a DogStatsD socket received:
one trace from the API request through the Prefect worker's flow-run process to every stage, the
five pipeline metrics, and JSON logs carrying the trace of their run."""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import PrefectClient

from tests.e2e.helpers import wait_for_flow_run
from tests.observability.conftest import DD_ENV, DD_SERVICE, DD_VERSION, ObservedStack

STAGES = ["generate", "ingest", "process", "transform", "export"]
FINAL = {"completed", "failed", "cancelled"}
UNIFIED_TAGS = {f"env:{DD_ENV}", f"service:{DD_SERVICE}", f"version:{DD_VERSION}"}
Span = dict[str, Any]


@dataclass
class ObservedRuns:
    traced: dict[str, Any]  # GET /api/pipelines/{id} of the run triggered over HTTP (completes)
    failed: dict[str, Any]  # the same for a run started from Prefect with transform failing
    failed_flow_run_id: str
    orphan_flow_run_id: str  # a flow run of a pipeline that does not exist, with a flow retry
    spans: list[Span]
    datagrams: list[str]


async def _eventually(check: Callable[[], bool], what: str, within: float = 90) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {within} s")
        await asyncio.sleep(0.2)


async def _final(api: httpx.AsyncClient, pipeline_id: int) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def poll() -> bool:
        nonlocal body
        body = (await api.get(f"/api/pipelines/{pipeline_id}")).json()
        return body["status"] in FINAL

    deadline = time.monotonic() + 120
    while not await poll():
        assert time.monotonic() < deadline, f"pipeline {pipeline_id} not finished: {body}"
        await asyncio.sleep(0.3)
    return body


@pytest.fixture(scope="package")
async def runs(
    api: httpx.AsyncClient, prefect: PrefectClient, observed_stack: ObservedStack
) -> ObservedRuns:
    """Three runs at once: one triggered over HTTP, one started from Prefect that fails in
    transform, and one of a pipeline that does not exist, which Prefect runs twice."""
    created = await api.post(
        "/api/pipelines", json={"name": "traced", "record_count": 1000, "trigger": True}
    )
    assert created.status_code == 201
    doomed = (await api.post("/api/pipelines", json={"name": "doomed", "record_count": 100})).json()
    deployment = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    failing = await prefect.create_flow_run_from_deployment(
        deployment.id,
        parameters={"pipeline_id": doomed["id"], "record_count": 100},
        job_variables={"env": {"PIPELINE_FAIL_STAGE": "transform"}},
    )
    # fails before any stage, on both of its attempts: counted as one run that failed
    orphan = await prefect.create_flow_run_from_deployment(
        deployment.id,
        parameters={"pipeline_id": 10**6, "record_count": 10},
        job_variables={
            "env": {"PIPELINE_FLOW_RETRIES": "1", "PIPELINE_FLOW_RETRY_DELAY_SECONDS": "0"}
        },
    )
    traced, failed, orphaned = await asyncio.gather(
        _final(api, created.json()["id"]),
        _final(api, doomed["id"]),
        wait_for_flow_run(prefect, str(orphan.id), within=120),
    )
    assert (traced["status"], failed["status"]) == ("completed", "failed")
    assert (orphaned.run_count, orphaned.state and orphaned.state.is_failed()) == (2, True)
    statsd, agent = observed_stack.statsd, observed_stack.agent
    # Each flow-run process sends pipeline.runs and flushes its traces as its flow ends.
    await _eventually(
        lambda: sum(line.startswith("pipeline.runs:") for line in statsd.lines) == 3,
        "pipeline.runs of the three runs",
    )
    await _eventually(
        lambda: sum(span["name"] == "pipeline.flow" for span in agent.spans()) == 4,
        "the spans of the four flow-run attempts",
    )
    return ObservedRuns(
        traced, failed, str(failing.id), str(orphan.id), agent.spans(), list(statsd.lines)
    )


def _only(spans: list[Span], **where: Any) -> Span:
    found = [s for s in spans if all(s.get(k) == v for k, v in where.items())]
    assert len(found) == 1, f"{len(found)} spans match {where}"
    return found[0]


def _children(spans: list[Span], parent: Span) -> list[Span]:
    return sorted(
        (s for s in spans if s["parent_id"] == parent["span_id"]), key=lambda s: s["start"]
    )


def _flow_span(runs: ObservedRuns, flow_run_id: str) -> Span:
    flows = [s for s in runs.spans if s["name"] == "pipeline.flow"]
    return _only(
        [s for s in flows if s["meta"]["prefect.flow_run_id"] == flow_run_id], name="pipeline.flow"
    )


def _trace_id_128(span: Span) -> str:
    """The trace id as log injection writes it: the 128-bit id in hex."""
    return f"{span['meta']['_dd.p.tid']}{span['trace_id']:016x}"


async def test_one_trace_from_the_request_through_the_flow_to_every_stage(
    runs: ObservedRuns,
) -> None:
    run = runs.traced["latest_run"]
    trigger = _only(runs.spans, name="pipeline.trigger")
    trace = [s for s in runs.spans if s["trace_id"] == trigger["trace_id"]]
    request = _only(trace, span_id=trigger["parent_id"])
    flow = _only(trace, name="pipeline.flow")
    stages = _children(trace, flow)
    stage_spans = [s for s in stages if s["name"] == "pipeline.stage"]

    assert (request["name"], request["resource"], request["parent_id"]) == (
        "fastapi.request",
        "POST /api/pipelines",
        0,
    )
    assert request["meta"]["http.status_code"] == "201"
    assert (trigger["resource"], trigger["meta"]["pipeline_id"], trigger["meta"]["run_id"]) == (
        "Data Pipeline",
        str(runs.traced["id"]),
        str(run["id"]),
    )
    assert (flow["resource"], flow["parent_id"], flow["error"]) == (
        "Data Pipeline",
        trigger["span_id"],
        0,
    )
    assert {
        k: flow["meta"][k] for k in ("pipeline_id", "run_id", "prefect.flow_run_id", "status")
    } == {
        "pipeline_id": str(runs.traced["id"]),
        "run_id": str(run["id"]),
        "prefect.flow_run_id": run["prefect_flow_run_id"],
        "status": "completed",
    }
    assert [
        (
            s["resource"],
            s["meta"]["stage"],
            s["meta"]["pipeline_id"],
            s["meta"]["run_id"],
            s["meta"]["status"],
            s["metrics"]["records_out"],
            s["metrics"]["attempt"],
            s["error"],
        )
        for s in stage_spans
    ] == [
        (name, name, str(runs.traced["id"]), str(run["id"]), "completed", 1000.0, 1.0, 0)
        for name in STAGES
    ]
    # Each process's part of the trace carries the upper half of the same 128-bit trace id.
    assert flow["meta"]["_dd.p.tid"] == request["meta"]["_dd.p.tid"]
    assert {(s["service"], s["meta"]["env"], s["meta"]["version"]) for s in (request, flow)} == {
        (DD_SERVICE, DD_ENV, DD_VERSION)
    }


async def test_integrations_trace_the_prefect_calls_and_the_database(runs: ObservedRuns) -> None:
    trigger = _only(runs.spans, name="pipeline.trigger")
    trace = [s for s in runs.spans if s["trace_id"] == trigger["trace_id"]]
    create = [
        s
        for s in _children(trace, trigger)
        if s["meta"].get("http.url", "").endswith("/create_flow_run")
    ]
    assert [
        (s["name"], s["meta"]["http.method"], s["meta"]["http.status_code"]) for s in create
    ] == [("http.request", "POST", "201")]
    flow = _only(trace, name="pipeline.flow")
    for stage in (s for s in _children(trace, flow) if s["name"] == "pipeline.stage"):
        queries = _children(trace, stage)
        assert {(s["name"], s["service"], s["meta"]["component"]) for s in queries} == {
            ("sqlite.query", "sqlite", "sqlalchemy")
        }
        assert {
            "UPDATE pipeline_stages SET status=?, started_at=?, attempts=? "
            "WHERE pipeline_stages.id = ?",
            "UPDATE pipeline_stages SET status=?, completed_at=?, duration_seconds=?, "
            "records_in=?, records_out=?, records_rejected=? WHERE pipeline_stages.id = ?",
        } <= {s["resource"] for s in queries}
    request = _only(trace, span_id=trigger["parent_id"])
    inserts = [s["resource"].split(" (")[0] for s in _children(trace, request)]
    assert "INSERT INTO pipelines" in inserts
    assert "INSERT INTO pipeline_runs" in inserts


async def test_a_failing_stage_flags_its_span_with_the_error(runs: ObservedRuns) -> None:
    flow = _flow_span(runs, runs.failed_flow_run_id)
    trace = [s for s in runs.spans if s["trace_id"] == flow["trace_id"]]
    stages = [s for s in _children(trace, flow) if s["name"] == "pipeline.stage"]
    message = "injected failure in transform on attempt 1"

    # Started from Prefect, not the API: the flow span starts a trace of its own.
    assert (flow["parent_id"], flow["error"], flow["meta"]["status"]) == (0, 1, "failed")
    assert [(s["resource"], s["meta"]["status"], s["error"]) for s in stages] == [
        ("generate", "completed", 0),
        ("ingest", "completed", 0),
        ("process", "completed", 0),
        ("transform", "failed", 1),
    ]
    transform = stages[3]
    assert (transform["meta"]["error.type"], transform["meta"]["error.message"]) == (
        "app.pipeline.drills.InjectedFaultError",
        message,
    )
    assert transform["meta"]["error.stack"].startswith("Traceback (most recent call last):\n")
    assert transform["meta"]["error.stack"].endswith(f"InjectedFaultError: {message}\n")
    assert (flow["meta"]["error.type"], flow["meta"]["error.message"]) == (
        "app.pipeline.drills.InjectedFaultError",
        message,
    )
    assert "records_out" not in transform["metrics"]


def _parse(datagram: str) -> tuple[str, str, str, frozenset[str]]:
    """`name:value|type|#tags[|c:container]` → (name, value, type, tags)."""
    head, kind, *rest = datagram.split("|")
    name, value = head.rsplit(":", 1)
    tags = next((part[1:] for part in rest if part.startswith("#")), "")
    return name, value, kind, frozenset(tags.split(","))


async def test_the_five_metrics_with_their_types_tags_and_values(runs: ObservedRuns) -> None:
    parsed = [_parse(line) for line in runs.datagrams]
    durations: dict[tuple[str, frozenset[str]], list[float]] = {}
    for name, value, kind, tags_ in parsed:
        if kind == "d":
            durations.setdefault((name, tags_), []).append(float(value))
    assert all(seconds > 0 for found in durations.values() for seconds in found)
    seen = Counter(
        (name, "<seconds>" if kind == "d" else value, kind, tags - UNIFIED_TAGS)
        for name, value, kind, tags in parsed
    )

    def tags(**values: str) -> frozenset[str]:
        return frozenset(f"{k}:{v}" for k, v in values.items())

    expected = Counter(
        [
            # the run over HTTP: 1,000 records through all five stages
            *[
                ("pipeline.stage.duration", "<seconds>", "d", tags(stage=s, status="completed"))
                for s in STAGES
            ],
            *[("pipeline.records_processed", "1000", "c", tags(stage=s)) for s in STAGES],
            ("pipeline.runs", "1", "c", tags(status="completed")),
            ("pipeline.duration", "<seconds>", "d", tags(status="completed")),
            # the run failing in transform: 100 records through three stages, then the error
            *[
                ("pipeline.stage.duration", "<seconds>", "d", tags(stage=s, status="completed"))
                for s in STAGES[:3]
            ],
            *[("pipeline.records_processed", "100", "c", tags(stage=s)) for s in STAGES[:3]],
            ("pipeline.stage.duration", "<seconds>", "d", tags(stage="transform", status="failed")),
            ("pipeline.errors", "1", "c", tags(stage="transform", error_type="InjectedFaultError")),
            ("pipeline.runs", "1", "c", tags(status="failed")),
            ("pipeline.duration", "<seconds>", "d", tags(status="failed")),
            # the orphan: an error on each attempt, one run (its attempt Prefect ran again is
            # not an end)
            *[("pipeline.errors", "1", "c", tags(stage="flow", error_type="PipelineNotFoundError"))]
            * 2,
            ("pipeline.runs", "1", "c", tags(status="failed")),
            ("pipeline.duration", "<seconds>", "d", tags(status="failed")),
        ]
    )
    assert seen == expected
    assert all(UNIFIED_TAGS.issubset(tags_) for *_, tags_ in parsed)
    assert not [line for line in runs.datagrams if "pipeline_id" in line]
    # the failed run's wall time holds its failed stage's (the orphan's is the other one)
    (transform_failed,) = durations[
        ("pipeline.stage.duration", tags(stage="transform", status="failed") | UNIFIED_TAGS)
    ]
    run_durations = durations[("pipeline.duration", tags(status="failed") | UNIFIED_TAGS)]
    assert len(run_durations) == 2
    assert max(run_durations) > transform_failed


async def test_an_attempt_prefect_runs_again_is_a_retrying_span_not_a_run(
    runs: ObservedRuns,
) -> None:
    attempts = sorted(
        (
            s
            for s in runs.spans
            if s["name"] == "pipeline.flow"
            and s["meta"]["prefect.flow_run_id"] == runs.orphan_flow_run_id
        ),
        key=lambda s: s["start"],
    )
    assert [(s["meta"]["status"], s["error"]) for s in attempts] == [
        ("retrying", 1),
        ("failed", 1),
    ]
    assert {s["meta"]["error.type"] for s in attempts} == {
        "app.pipeline.claim.PipelineNotFoundError"
    }


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def test_logs_are_json_lines_carrying_the_trace_of_their_run(
    runs: ObservedRuns, observed_stack: ObservedStack, prefect: PrefectClient
) -> None:
    run = runs.traced["latest_run"]
    pipeline_id, run_id, flow_run_id = runs.traced["id"], run["id"], run["prefect_flow_run_id"]
    trigger = _only(runs.spans, name="pipeline.trigger")
    flow = _flow_span(runs, flow_run_id)
    stage_ids = {
        s["resource"]: str(s["span_id"])
        for s in _children(runs.spans, flow)
        if s["name"] == "pipeline.stage"
    }
    trace_id = _trace_id_128(flow)
    correlation = ("dd.trace_id", "dd.span_id", "dd.service", "dd.env", "dd.version")

    def correlated(line: dict[str, Any]) -> tuple[str, ...]:
        return tuple(line[key] for key in correlation)

    def ids(span_id: str) -> tuple[str, ...]:
        return (trace_id, span_id, DD_SERVICE, DD_ENV, DD_VERSION)

    api_lines = _json_lines(observed_stack.log_dir / "api.log")
    created = _only(
        api_lines, message=f"pipeline {pipeline_id} run {run_id}: flow run {flow_run_id} created"
    )
    assert (created["level"], created["logger"]) == ("INFO", "app.pipeline.orchestrator")
    assert correlated(created) == ids(str(trigger["span_id"]))

    def flow_run_lines() -> list[dict[str, Any]]:
        return [
            line
            for line in _json_lines(observed_stack.log_dir / "worker-1.log")
            if line.get("flow_run_id") == flow_run_id
        ]

    # the engine logs the flow run's end after its spans are sent (seen 2.2 s later in CI)
    await _eventually(
        lambda: any(
            line["message"].startswith("Finished in state") and "task_run_id" not in line
            for line in flow_run_lines()
        ),
        "the flow run's last line",
    )
    flow_lines = flow_run_lines()
    for stage in STAGES:
        line = _only(flow_lines, message=f"stage {stage} completed: 1000 in, 1000 out")
        assert (line["logger"], correlated(line)) == ("prefect.task_runs", ids(stage_ids[stage]))
    done = _only(
        flow_lines, message=f"pipeline {pipeline_id} run {run_id}: completed, 1000 records"
    )
    assert correlated(done) == ids(str(flow["span_id"]))
    # every line of the run's trace is this run's, and its spans are spans of that trace;
    # Prefect's own lines before the flow span carry the trigger's span, after it the flow's
    traced_lines = [line for line in flow_lines if line["dd.trace_id"] == trace_id]
    trace_span_ids = {str(s["span_id"]) for s in runs.spans if s["trace_id"] == flow["trace_id"]}
    data_dir = observed_stack.stack.env["PIPELINE_DATA_DIR"]
    name = (await prefect.read_flow_run(flow_run_id)).name
    ui = observed_stack.stack.prefect_api_url.removesuffix("/api")
    assert [
        (line["message"], line["dd.span_id"])
        for line in traced_lines
        if line["message"].startswith(("Beginning", "View at", "Finished in state"))
        and "task_run_id" not in line
    ] == [
        (f"Beginning flow run {name!r} for flow 'Data Pipeline'", str(trigger["span_id"])),
        (f"View at {ui}/runs/flow-run/{flow_run_id}", str(trigger["span_id"])),
        ("Finished in state Completed()", str(flow["span_id"])),
    ]
    assert [(line["logger"], line["message"]) for line in traced_lines] == [
        ("prefect.flow_runs", f"Beginning flow run {name!r} for flow 'Data Pipeline'"),
        ("prefect.flow_runs", f"View at {ui}/runs/flow-run/{flow_run_id}"),
        (
            "prefect.flow_runs",
            f"pipeline {pipeline_id} run {run_id}: 1000 records in {data_dir}/runs/{run_id}",
        ),
        *[
            line
            for stage in STAGES
            for line in [
                ("prefect.task_runs", f"stage {stage} completed: 1000 in, 1000 out"),
                ("prefect.task_runs", "Finished in state Completed()"),
            ]
        ],
        ("prefect.flow_runs", f"pipeline {pipeline_id} run {run_id}: completed, 1000 records"),
        ("prefect.flow_runs", "Finished in state Completed()"),
    ]
    assert {line["dd.span_id"] for line in traced_lines} <= trace_span_ids


async def test_logs_endpoint_serves_the_latest_run_logs_from_prefect(
    runs: ObservedRuns, api: httpx.AsyncClient
) -> None:
    pipeline_id = runs.traced["id"]
    stage_lines: list[dict[str, Any]] = []
    body: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] | None = None
    deadline = time.monotonic() + 30
    # Prefect ships logs in the background, every 2 s from each process: the worker's lines about
    # the run (earlier timestamps) may land after the flow's. Read until nothing more arrives.
    while len(stage_lines) < 5 or body != previous:
        assert time.monotonic() < deadline, body
        previous = body
        await asyncio.sleep(2.5)
        response = await api.get(f"/api/pipelines/{pipeline_id}/logs")
        assert response.status_code == 200
        body = response.json()
        stage_lines = [line for line in body if line["message"].startswith("stage ")]
    assert [(line["level"], line["logger"], line["message"]) for line in stage_lines] == [
        ("INFO", "prefect.task_runs", f"stage {stage} completed: 1000 in, 1000 out")
        for stage in STAGES
    ]
    # each stage's line is its own task run's
    assert len({line["task_run_id"] for line in stage_lines} - {None}) == 5
    assert len({line["id"] for line in body}) == len(body)  # `pipeline logs --follow` needs them
    assert [line["timestamp"] for line in body] == sorted(line["timestamp"] for line in body)
    limited = (await api.get(f"/api/pipelines/{pipeline_id}/logs?limit=2")).json()
    assert limited == body[:2]
    last = (await api.get(f"/api/pipelines/{pipeline_id}/logs?limit=2&tail=true")).json()
    assert last == body[-2:]  # the dashboard's log tail: the newest lines, still oldest first

    fresh = (await api.post("/api/pipelines", json={"name": "never run"})).json()
    assert (await api.get(f"/api/pipelines/{fresh['id']}/logs")).json() == []
