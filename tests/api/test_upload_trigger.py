"""The upload form's `trigger` is as strict as the JSON create's: the spellings forms send
(`true`/`false`: curl -F, the dashboard, the CLI; `on`: a checked HTML checkbox), nothing else."""

from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun

from app.pipeline import orchestrator
from tests.api.test_uploads import GOOD, csv, pipelines, upload


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect makes each flow run asked for."""

    async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        return FlowRun(id=UUID(int=run_id), flow_id=UUID(int=8))

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)


async def test_the_spellings_forms_send_are_taken(client: httpx.AsyncClient, prefect: None) -> None:
    read = {}
    for sent in ("true", "on", "True", "false", "FALSE"):
        response = await upload(client, csv(GOOD), trigger=sent)
        assert response.status_code == 201, response.text
        read[sent] = response.json()["status"]
    assert read == {
        "true": "pending",
        "on": "pending",
        "True": "pending",  # what Python's requests sends for data={"trigger": True}
        "false": "created",
        "FALSE": "created",
    }


async def test_other_spellings_are_a_422_naming_trigger(
    client: httpx.AsyncClient, prefect: None
) -> None:
    """ "yes", "1", "t" were read as true, and "no", "0", "off" as false, where the schema says
    boolean and the JSON create refuses them."""
    messages = {}
    for sent in ("yes", "1", "t", "y", "no", "0", "off", "", "x" * 50):
        response = await upload(client, csv(GOOD), trigger=sent)
        assert response.status_code == 422, sent
        messages[sent] = response.json()["message"]
        assert response.json()["detail"][0]["loc"] == ["body", "trigger"]
    hint = "trigger: must be true or false (or on, as an HTML checkbox sends it), not"
    assert messages == {
        "yes": f'{hint} "yes"',
        "1": f'{hint} "1"',
        "t": f'{hint} "t"',
        "y": f'{hint} "y"',
        "no": f'{hint} "no"',
        "0": f'{hint} "0"',
        "off": f'{hint} "off"',
        "": f'{hint} ""',
        "x" * 50: f'{hint} "{"x" * 39}…"',
    }
    assert await pipelines() == 0
