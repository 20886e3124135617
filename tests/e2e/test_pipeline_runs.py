"""End to end over HTTP: FastAPI → Prefect deployment → real worker → five stages → database."""

import asyncio
import re
import time

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from prefect.client.orchestration import PrefectClient

from app.pipeline import generator, stages
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import (
    TASK_NAMES,
    deploy,
    run_with_env,
    start_flow_run,
    start_with_env,
    task_runs,
    wait_for_final,
    wait_for_flow_run,
)


def expected_results(record_count: int) -> pl.DataFrame:
    """The stages applied in memory to the same generated records: what the run must export."""
    raw = generator.generate_batch(1, record_count, seed=42).lazy()
    valid, _ = stages.validate(raw)
    return stages.transform(stages.process(valid)).collect()


async def test_trigger_over_http_runs_all_five_stages(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    started = time.monotonic()
    created = await api.post(
        "/api/pipelines", json={"name": "demo", "record_count": 1000, "trigger": True}
    )
    assert created.status_code == 201
    pipeline = created.json()
    assert pipeline["status"] == "pending"
    flow_run_id = pipeline["latest_run"]["prefect_flow_run_id"]

    body = await wait_for_final(api, pipeline["id"])
    print(f"[{stack.backend}] trigger -> completed: {time.monotonic() - started:.2f} s")
    run = body["latest_run"]
    assert (body["status"], run["status"], run["error"]) == ("completed", "completed", None)
    assert run["prefect_flow_run_id"] == flow_run_id
    # the run started warm: the worker's zygote is up, and no run so far started cold (a cold
    # start logs "warm start unavailable"); the zygote's line for a run's exit can trail it, so
    # which process ran this one is tests/e2e/test_warm_start.py's to show
    log = (stack.stack.log_dir / "worker-1.log").read_text()
    assert re.search(r"zygote \d+: warm, listening on ", log), log
    assert "warm start unavailable" not in log
    assert run["prefect_flow_run_url"] == (
        f"http://127.0.0.1:{stack.stack.prefect_port}/runs/flow-run/{flow_run_id}"
    )
    assert run["records_processed"] == 1000
    assert [
        (
            s["name"],
            s["status"],
            s["records_in"],
            s["records_out"],
            s["records_rejected"],
            s["attempts"],
        )
        for s in run["stages"]
    ] == [
        (name, "completed", 1000, 1000, 0, 1)
        for name in ("generate", "ingest", "process", "transform", "export")
    ]
    for stage in run["stages"]:
        assert stage["started_at"] <= stage["completed_at"]
        assert stage["duration_seconds"] > 0
    assert (await api.get(f"/api/pipelines/{pipeline['id']}/stages")).json() == run["stages"]

    results = pl.read_parquet(run["output_file"])
    assert_frame_equal(results, expected_results(1000))
    summary = pl.read_parquet(
        stack.data_dir / "runs" / str(run["id"]) / "output" / "summary.parquet"
    )
    assert_frame_equal(summary, stages.summarize(expected_results(1000).lazy()).collect())

    flow_run = await wait_for_flow_run(prefect, flow_run_id)  # Prefect's Completed lands last
    assert flow_run.state is not None and flow_run.state.is_completed()
    assert flow_run.parameters == {"pipeline_id": pipeline["id"], "record_count": 1000}
    runs = await task_runs(prefect, flow_run_id, expected=5)
    assert [r.name.rsplit("-", 1)[0] for r in runs] == TASK_NAMES
    assert all(r.state is not None and r.state.is_completed() for r in runs)
    assert [r.tags for r in runs] == [["data-pipeline"]] * 5  # PIPELINE_TASK_TAGS' default


async def test_trigger_keeps_history_one_run_per_trigger(
    api: httpx.AsyncClient, stack: RunningStack
) -> None:
    pipeline = (await api.post("/api/pipelines", json={"name": "twice", "record_count": 10})).json()
    first = await api.post(f"/api/pipelines/{pipeline['id']}/trigger")
    assert first.status_code == 202
    await wait_for_final(api, pipeline["id"])
    second = (await api.post(f"/api/pipelines/{pipeline['id']}/trigger")).json()
    body = await wait_for_final(api, pipeline["id"])
    assert second["run_id"] == first.json()["run_id"] + 1
    assert second["prefect_flow_run_id"] != first.json()["prefect_flow_run_id"]
    assert (body["latest_run"]["id"], body["status"]) == (second["run_id"], "completed")
    for run_id in (first.json()["run_id"], second["run_id"]):
        assert (stack.data_dir / "runs" / str(run_id) / "output" / "results.parquet").exists()


async def test_failing_stage_fails_the_run_in_both_places(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    body, flow_run_id = await run_with_env(
        api, prefect, {"PIPELINE_FAIL_STAGE": "transform"}, "doomed"
    )
    run = body["latest_run"]
    assert (body["status"], run["prefect_flow_run_id"]) == ("failed", flow_run_id)
    assert (
        run["error"] == "transform: InjectedFaultError: injected failure in transform on attempt 1"
    )
    assert [(s["name"], s["status"]) for s in run["stages"]] == [
        ("generate", "completed"),
        ("ingest", "completed"),
        ("process", "completed"),
        ("transform", "failed"),
        ("export", "cancelled"),
    ]
    assert (
        run["stages"][3]["error"]
        == "InjectedFaultError: injected failure in transform on attempt 1"
    )
    assert all(s["completed_at"] is not None for s in run["stages"])

    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_failed()


@pytest.mark.parametrize("running_stack", ["sqlite"], indirect=True)  # no database in it
async def test_the_dask_fan_out_runs_in_a_real_flow_run(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """PIPELINE_DASK_PARTITIONS in the flow-run process: the transform fans out on a LocalCluster
    and the run writes the same rows as the single-process transform."""
    body, _ = await run_with_env(api, prefect, {"PIPELINE_DASK_PARTITIONS": "2"}, "fanned-out")
    run = body["latest_run"]
    assert (body["status"], run["error"], run["records_processed"]) == ("completed", None, 100)
    transform = run["stages"][3]
    assert (transform["name"], transform["records_in"], transform["records_out"]) == (
        "transform",
        100,
        100,
    )
    # the category average is a float sum regrouped by partition: equal up to rounding
    assert_frame_equal(
        pl.read_parquet(run["output_file"]), expected_results(100), check_exact=False, rel_tol=1e-12
    )


async def statuses_until_failed(
    api: httpx.AsyncClient, pipeline_id: int, within: float = 90
) -> list[tuple[str, str | None]]:
    """Each (status, error) the pipeline's latest run showed, sampled every 0.1 s, until failed."""
    seen: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + within
    while not seen or seen[-1][0] != "failed":
        assert time.monotonic() < deadline, f"not failed after {within} s: {seen[-3:]}"
        run = (await api.get(f"/api/pipelines/{pipeline_id}")).json()["latest_run"]
        if run and (not seen or seen[-1] != (run["status"], run["error"])):
            seen.append((run["status"], run["error"]))
        await asyncio.sleep(0.1)
    return seen


async def test_a_failure_prefect_retries_shows_pending_until_the_last_attempt(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """PIPELINE_FLOW_RETRIES=1: between the attempts the run waits (pending, with the reason);
    it fails once, after the last attempt, and never shows failed before that."""
    env = {
        "PIPELINE_FAIL_STAGE": "process",
        "PIPELINE_FLOW_RETRIES": "1",
        "PIPELINE_FLOW_RETRY_DELAY_SECONDS": "3",
    }
    pipeline_id, flow_run_id = await start_with_env(api, prefect, env, "retried-flow")
    seen = await statuses_until_failed(api, pipeline_id)
    fault = "process: InjectedFaultError: injected failure in process on attempt 1"
    waiting = ("pending", f"{fault}; attempt 1 of 2 failed; Prefect runs the flow again in 3 s")
    # sampled up to the first "failed": the wait came before it, and it was the last attempt's
    assert waiting in seen[:-1]
    assert seen[-1] == ("failed", fault)
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_failed()
    assert flow_run.run_count == 2
    # and it stays failed once Prefect has no attempt left (a failed shown too early would have
    # been followed by the wait, or by a run that ends otherwise)
    run = (await api.get(f"/api/pipelines/{pipeline_id}")).json()["latest_run"]
    assert (run["status"], run["error"]) == ("failed", fault)


async def test_bad_input_is_not_retried_by_prefect_either(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    """PIPELINE_FLOW_RETRIES=2 and an input whose every row is rejected: the same input fails the
    same way on every attempt, so the run fails after one, and Prefect does not run it again."""
    header = "id,name,category,value,quantity,is_active,created_at\n"
    rows = "1,a,Z,10,1,true,2026-03-01\n2,b,A,abc,1,true,2026-03-01\n"
    created = await api.post(
        "/api/pipelines",
        data={"name": "all-rejected"},
        files={"file": ("bad.csv", (header + rows).encode(), "text/csv")},
    )
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]
    env = {"PIPELINE_FLOW_RETRIES": "2", "PIPELINE_FLOW_RETRY_DELAY_SECONDS": "0"}
    flow_run_id = await start_flow_run(prefect, pipeline_id, 2, env)
    seen = await statuses_until_failed(api, pipeline_id)
    rejected = (
        "ingest: RecordsRejectedError: all 2 input records were rejected (unknown category (must be A, B, C or D): 1, "
        "unparseable value: 1); the run's rejects file lists each with its reject_reason"
    )
    assert seen[-1] == ("failed", rejected)
    assert [status for status, _ in seen if status not in ("pending", "running")] == ["failed"]
    assert not [error for _, error in seen if error and "Prefect runs the flow again" in error]
    flow_run = await wait_for_flow_run(prefect, flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_failed()
    assert (flow_run.run_count, flow_run.empirical_policy.retries) == (1, 0)


async def test_retried_task_shows_its_retries(
    api: httpx.AsyncClient, prefect: PrefectClient
) -> None:
    body, flow_run_id = await run_with_env(
        api, prefect, {"PIPELINE_FAIL_STAGE": "generate:1"}, "flaky"
    )
    generate = body["latest_run"]["stages"][0]
    assert (body["status"], generate["status"], generate["attempts"]) == (
        "completed",
        "completed",
        2,
    )
    runs = await task_runs(prefect, flow_run_id, expected=5)
    assert runs[0].name.startswith("generate_data")
    assert (runs[0].run_count, runs[1].run_count) == (2, 1)


async def test_deploy_is_idempotent_and_a_missing_deployment_is_a_503(
    api: httpx.AsyncClient, prefect: PrefectClient, stack: RunningStack
) -> None:
    before = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    env = stack.stack.process_env()
    await deploy(env)
    after = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    fields = ("id", "entrypoint", "path", "work_pool_name", "parameters", "tags", "pull_steps")
    assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]
    assert len(await prefect.read_work_pools()) == 1

    await prefect.delete_deployment(before.id)
    missing = (
        f"Deployment 'Data Pipeline/data-pipeline-deployment' not found on "
        f"{stack.stack.prefect_api_url}. Create it with: python app/pipeline/deploy.py"
    )
    try:
        pipeline = (await api.post("/api/pipelines", json={"name": "orphan"})).json()
        # the API holds the deleted deployment's id: its schedules are read by the name again
        response = await api.get("/api/schedules")
        assert (response.status_code, response.json()["detail"]) == (503, missing)
        response = await api.post(f"/api/pipelines/{pipeline['id']}/trigger")
        assert (response.status_code, response.json()["detail"]) == (503, missing)
        assert (await api.get(f"/api/pipelines/{pipeline['id']}")).json()["latest_run"] is None
    finally:
        await deploy(env)
    response = await api.post(f"/api/pipelines/{pipeline['id']}/trigger")
    assert response.status_code == 202
    assert (await wait_for_final(api, pipeline["id"]))["status"] == "completed"

    # created again under a new id, while the API holds the old one: schedules find the new one
    current = await prefect.read_deployment_by_name("Data Pipeline/data-pipeline-deployment")
    await prefect.delete_deployment(current.id)
    await deploy(env)
    response = await api.put(
        f"/api/pipelines/{pipeline['id']}/schedule", json={"cron": "0 6 * * *"}
    )
    assert (response.status_code, response.json()["cron"]) == (200, "0 6 * * *")
    response = await api.delete(f"/api/pipelines/{pipeline['id']}/schedule")
    assert response.status_code == 204
