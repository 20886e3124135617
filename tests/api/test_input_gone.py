"""A pipeline's input file gone from the server when a run reads it (an upload's folder removed by
hand, a restore without it; a file of PIPELINE_INPUT_DIR removed): the run fails at once with an
error saying what to do. It failed with `FileNotFoundError: [Errno 2] No such file or directory:
'…/uploads/…/input.csv'` after two more attempts that could only fail the same way.
"""

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType, TaskRun

from app.models import Status
from app.pipeline import flows, orchestrator, retries, work
from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles, uploads_dir
from app.pipeline.work import InputSource
from tests.api.test_uploads import GOOD, csv, upload
from tests.conftest import SetSetting
from tests.support.rows import read_run

STAGES = ("generate_data", "ingest_data", "process_data", "transform_data", "export_results")


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect makes each flow run asked for; none is run (the test runs the flow itself)."""

    async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        return FlowRun(id=UUID(int=run_id), flow_id=UUID(int=8))

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)


def _as_its_worker_runs_it(run_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow as a worker's process runs it for `run_id`, without Prefect's server."""
    monkeypatch.setattr(flows, "FlowRunContext", SimpleNamespace(get=lambda: None))
    monkeypatch.setattr(
        flows,
        "flow_run",
        SimpleNamespace(id=UUID(int=run_id), tags=[f"pipeline-run:{run_id}"], flow_name="t"),
    )
    monkeypatch.setattr(flows, "get_run_logger", lambda: logging.getLogger("test"))
    for name in STAGES:
        monkeypatch.setattr(flows, name, getattr(flows, name).fn)


def _upload_gone(path: Path) -> str:
    return (
        f"input_path: the uploaded file is gone from the server ({path}): it was removed from "
        "PIPELINE_DATA_DIR/uploads, by hand or by a restore without it; upload it again (POST "
        "/api/pipelines with the file as the form field 'file'), which makes a new pipeline"
    )


async def test_a_run_of_an_upload_removed_since_fails_saying_to_upload_it_again(
    client: httpx.AsyncClient, prefect: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await upload(client, csv(GOOD), "orders.csv")
    assert created.status_code == 201, created.text
    pipeline, stored = created.json(), Path(created.json()["input_path"])
    triggered = await client.post(f"/api/pipelines/{pipeline['id']}/trigger")
    assert triggered.status_code == 202, triggered.text
    run_id = triggered.json()["run_id"]
    shutil.rmtree(stored.parent)  # <data dir>/uploads/<id>/, before the run reads it
    _as_its_worker_runs_it(run_id, monkeypatch)

    with pytest.raises(inputs.InputError) as failed:
        await flows.run_data_pipeline_flow.fn(pipeline["id"], pipeline["record_count"])

    error = f"InputError: {_upload_gone(stored)}"
    assert str(failed.value) == _upload_gone(stored)
    assert not retries.retryable(failed.value)  # neither the task nor the flow tries again
    run = await read_run(run_id)
    assert (run.status, run.error) == (Status.FAILED, f"generate: {error}")
    assert [(s.name, s.status, s.error, s.attempts) for s in run.stages][:2] == [
        ("generate", Status.FAILED, error, 1),
        ("ingest", Status.CANCELLED, None, 0),
    ]


async def test_a_trigger_or_retry_of_a_pipeline_whose_upload_is_gone_is_refused(
    client: httpx.AsyncClient, prefect: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API sees the file is gone: a 409 saying what to do, not a 202 and a run that fails."""
    created = await upload(client, csv(GOOD), "orders.csv")
    pipeline, stored = created.json(), Path(created.json()["input_path"])
    triggered = await client.post(f"/api/pipelines/{pipeline['id']}/trigger")
    run_id = triggered.json()["run_id"]
    shutil.rmtree(stored.parent)
    _as_its_worker_runs_it(run_id, monkeypatch)
    with pytest.raises(inputs.InputError):  # the run that was under way when it went
        await flows.run_data_pipeline_flow.fn(pipeline["id"], pipeline["record_count"])

    refused = f"pipeline {pipeline['id']} cannot run: {_upload_gone(stored)}"
    for action in ("trigger", "retry"):
        answer = await client.post(f"/api/pipelines/{pipeline['id']}/{action}")
        assert (answer.status_code, answer.json()["message"]) == (409, refused), action
    runs = await client.get(f"/api/pipelines/{pipeline['id']}/runs")
    assert [(r["id"], r["status"]) for r in runs.json()["items"]] == [(run_id, "failed")]


def test_prefect_does_not_retry_a_stage_whose_input_is_gone(tmp_path: Path) -> None:
    """The task's retry condition, as Prefect asks it with the failed attempt's state."""
    source = InputSource(uploads_dir() / ("0" * 32) / "input.csv", "csv")
    with pytest.raises(inputs.InputError) as failed:
        work.generate(
            RunFiles(tmp_path / "run"), record_count=0, seed=1, batch_rows=10, source=source
        )
    state: State[None] = State(type=StateType.FAILED, data=failed.value)
    assert (
        retries.retry_condition(flows.generate_data, TaskRun(task_key="t", dynamic_key="0"), state)
        is False
    )


async def test_a_file_of_the_input_dir_removed_or_a_link_left_dangling(
    client: httpx.AsyncClient, setting: SetSetting, tmp_path: Path
) -> None:
    root = tmp_path / "inputs"
    (root / "daily").mkdir(parents=True)
    setting("PIPELINE_INPUT_DIR", str(root))
    (root / "daily" / "orders.csv").write_bytes(csv(GOOD))
    (root / "latest.csv").symlink_to(root / "daily" / "orders.csv")
    names = ("daily/orders.csv", "latest.csv")
    for name in names:
        created = await client.post("/api/pipelines", json={"name": name, "input_path": name})
        assert created.status_code == 201, created.text
    (root / "daily" / "orders.csv").unlink()  # the link now leads nowhere
    said = {}
    for name in names:
        source = InputSource(root.resolve() / name, "csv")
        with pytest.raises(inputs.InputError) as failed:
            work.generate(
                RunFiles(tmp_path / name), record_count=0, seed=1, batch_rows=10, source=source
            )
        said[name] = str(failed.value)
    fix = "put it back, or create the pipeline again with the input_path of a file that is there"
    assert said == {
        "daily/orders.csv": (
            f"input_path: no file 'daily/orders.csv' in PIPELINE_INPUT_DIR any more: {fix}"
        ),
        "latest.csv": f"input_path: no file 'latest.csv' in PIPELINE_INPUT_DIR any more: {fix}",
    }
