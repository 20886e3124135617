"""A pipeline's JSON says where its records come from (`input_source`): an upload, a file the user
named under PIPELINE_INPUT_DIR, or generated records. Clients told an upload by the server's
storage layout (…/uploads/<32 hex>/input.csv); the dashboard's page says it in the CLI's words."""

from pathlib import Path

import httpx
from sqlalchemy import select

from app.db import get_sessionmaker
from app.models import Pipeline
from app.pipeline.store import uploads_dir
from tests.api.test_openapi import openapi
from tests.api.test_uploads import GOOD, csv, input_dir, upload
from tests.support.html import parse
from tests.support.rows import T0

__all__ = ["input_dir"]  # the fixture, shared with test_uploads

INPUT_FIELDS = ("input_path", "input_format", "input_source")


async def _input_of(client: httpx.AsyncClient, pipeline_id: int) -> list[dict[str, object]]:
    """The input fields of the pipeline as GET /api/pipelines/{id} and the list show it."""
    shown = (await client.get(f"/api/pipelines/{pipeline_id}")).json()
    [listed] = [p for p in (await client.get("/api/pipelines")).json()["items"]
                if p["id"] == pipeline_id]  # fmt: skip
    return [{field: body[field] for field in INPUT_FIELDS} for body in (shown, listed)]


async def _dashboard_input(client: httpx.AsyncClient, pipeline_id: int) -> str:
    page = parse((await client.get(f"/pipelines/{pipeline_id}")).text)
    facts = {
        fact.select("dt")[0].text: fact.select("dd")[0].text
        for fact in page.select("dl", "facts")[0].select("div")
    }
    return facts["Input"]


async def test_an_upload_is_said_to_be_one(client: httpx.AsyncClient) -> None:
    response = await upload(client, csv(GOOD), "orders.csv")
    assert response.status_code == 201, response.text
    async with get_sessionmaker()() as session:
        stored = await session.scalar(select(Pipeline.input_path))
    assert stored is not None
    expected = {"input_path": stored, "input_format": "csv", "input_source": "upload"}
    assert {field: response.json()[field] for field in INPUT_FIELDS} == expected
    assert await _input_of(client, 1) == [expected, expected]
    assert await _dashboard_input(client, 1) == "uploaded csv file"


async def test_a_file_named_under_the_input_dir_is_a_path(
    client: httpx.AsyncClient, input_dir: Path
) -> None:
    (input_dir / "daily").mkdir()
    (input_dir / "daily" / "orders.csv").write_bytes(csv(GOOD))
    response = await client.post(
        "/api/pipelines", json={"name": "d", "input_path": "daily/orders.csv"}
    )
    assert response.status_code == 201, response.text
    expected = {"input_path": "daily/orders.csv", "input_format": "csv", "input_source": "path"}
    assert {field: response.json()[field] for field in INPUT_FIELDS} == expected
    assert await _input_of(client, 1) == [expected, expected]
    assert await _dashboard_input(client, 1) == "daily/orders.csv (csv)"


async def test_generated_records_are_said_to_be_generated(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/pipelines", json={"name": "g", "record_count": 5})
    assert response.status_code == 201, response.text
    expected = {"input_path": None, "input_format": None, "input_source": "generated"}
    assert {field: response.json()[field] for field in INPUT_FIELDS} == expected
    assert await _input_of(client, 1) == [expected, expected]
    assert await _dashboard_input(client, 1) == "generated"


async def test_the_source_is_told_by_where_the_file_is_kept_not_by_its_name(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """An upload kept under another name than uploads/<32 hex>/input.csv is still an upload; a
    file outside the uploads directory named like one (under an earlier PIPELINE_INPUT_DIR) is
    a path."""
    kept = uploads_dir() / "an-earlier-layout" / "orders.csv"
    lookalike = tmp_path / "earlier" / "uploads" / ("0123456789abcdef" * 2) / "input.csv"
    async with get_sessionmaker()() as session:
        for name, path in (("kept", kept), ("lookalike", lookalike)):
            session.add(
                Pipeline(
                    name=name,
                    record_count=1,
                    input_path=str(path),
                    input_format="csv",
                    created_at=T0,
                )
            )
        await session.commit()
    assert [(await _input_of(client, pipeline_id))[0] for pipeline_id in (1, 2)] == [
        {"input_path": str(kept), "input_format": "csv", "input_source": "upload"},
        {"input_path": str(lookalike), "input_format": "csv", "input_source": "path"},
    ]
    assert await _dashboard_input(client, 1) == "uploaded csv file"
    assert await _dashboard_input(client, 2) == f"{lookalike} (csv)"


def test_the_openapi_schema_documents_the_field() -> None:
    schema = openapi()["components"]["schemas"]["PipelineOut"]
    assert schema["properties"]["input_source"] == {
        "type": "string",
        "enum": ["upload", "path", "generated"],
        "title": "Input Source",
        "description": "Where its runs' records come from: `upload`, a file uploaded with the "
        "create (input_path is where the server keeps it); `path`, a file named under "
        "PIPELINE_INPUT_DIR (input_path); `generated`, synthetic records (input_path is null).",
    }
    assert "input_source" in schema["required"]
