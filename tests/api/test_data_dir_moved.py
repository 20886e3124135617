"""Uploads after the data directory moved (PIPELINE_DATA_DIR set to its new place; or the project
moved, with `var/`): a pipeline's input_path is stored absolute, so its upload was looked for
where it had been. Its trigger was a 409 saying the file was gone from PIPELINE_INPUT_DIR (it
never was one), the API called it a "path", and a run of it failed the same way."""

import shutil
from pathlib import Path

import httpx
import pytest

from app.config import get_settings
from app.models import Status
from app.pipeline import flows
from tests.api.test_input_gone import _as_its_worker_runs_it
from tests.api.test_input_gone import prefect as prefect  # the fixture
from tests.api.test_uploads import GOOD, csv, upload
from tests.conftest import SetSetting
from tests.support.rows import read_run

pytestmark = pytest.mark.usefixtures("prefect")  # Prefect's trigger, faked (test_input_gone's)


async def test_an_upload_is_found_and_run_where_the_data_directory_moved(
    client: httpx.AsyncClient,
    setting: SetSetting,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = await upload(client, csv(GOOD), "orders.csv")
    assert created.status_code == 201, created.text
    pipeline = created.json()
    stored = Path(pipeline["input_path"])
    moved = tmp_path / "moved-data"
    (moved / "uploads").mkdir(parents=True)
    shutil.move(stored.parent, moved / "uploads" / stored.parent.name)
    setting("PIPELINE_DATA_DIR", str(moved))
    assert get_settings().data_dir == moved
    here = moved / "uploads" / stored.parent.name / stored.name

    read = (await client.get(f"/api/pipelines/{pipeline['id']}")).json()
    assert (read["input_source"], read["input_path"]) == ("upload", str(here))
    triggered = await client.post(f"/api/pipelines/{pipeline['id']}/trigger")
    assert triggered.status_code == 202, triggered.text
    run_id = triggered.json()["run_id"]
    _as_its_worker_runs_it(run_id, monkeypatch)
    await flows.run_data_pipeline_flow.fn(pipeline["id"], pipeline["record_count"])
    run = await read_run(run_id)
    assert (run.status, run.error, run.stages[1].records_out) == (Status.COMPLETED, None, 1)
