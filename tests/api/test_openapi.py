"""The OpenAPI document (/docs, client generators): every route once, both bodies of the create."""

import warnings
from typing import Any

from app.main import app


def openapi() -> dict[str, Any]:
    app.openapi_schema = None  # built afresh, with whatever it warns about
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns of a duplicate operation id
        return app.openapi()


def test_every_operation_id_is_unique() -> None:
    paths = openapi()["paths"].values()
    operations = [operation["operationId"] for path in paths for operation in path.values()]
    assert len(operations) == len(set(operations))
    assert "head" not in {method for path in paths for method in path}  # GET documents it


def test_create_documents_the_json_body_and_the_upload() -> None:
    body = openapi()["paths"]["/api/pipelines"]["post"]["requestBody"]["content"]
    assert body["application/json"] == {"schema": {"$ref": "#/components/schemas/PipelineCreate"}}
    upload = body["multipart/form-data"]["schema"]
    assert (sorted(upload["properties"]), upload["required"]) == (
        ["description", "file", "format", "name", "trigger"],
        ["name", "file"],
    )
    assert upload["properties"]["file"]["format"] == "binary"


ERROR_OUT = {"$ref": "#/components/schemas/ErrorOut"}
READ, ONE = ["401", "403", "422", "503"], ["401", "403", "404", "422", "503"]
WRITE = ["401", "403", "404", "409", "422", "503"]
DOWNLOAD = ["400", "401", "403", "404", "416", "422", "503", "507"]


def test_each_operation_declares_the_errors_it_can_answer() -> None:
    """With the one error body, {message, detail}: the 422 too (FastAPI's own lacks message)."""
    spec = openapi()
    declared = {
        f"{method.upper()} {path}": sorted(code for code in operation["responses"] if code >= "4")
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    assert declared == {
        "GET /health": [],
        "GET /ready": ["401", "403", "503"],
        "POST /api/pipelines": ["401", "403", "409", "413", "415", "422", "503", "507"],
        "GET /api/pipelines": READ,
        "GET /api/pipelines/{pipeline_id}": ONE,
        "DELETE /api/pipelines/{pipeline_id}": WRITE,
        "GET /api/pipelines/{pipeline_id}/stages": ONE,
        "POST /api/pipelines/{pipeline_id}/trigger": WRITE,
        "POST /api/pipelines/{pipeline_id}/retry": WRITE,
        "POST /api/pipelines/{pipeline_id}/cancel": WRITE,
        "GET /api/pipelines/{pipeline_id}/runs": ONE,
        "GET /api/pipelines/{pipeline_id}/runs/{run_id}/output": DOWNLOAD,
        "GET /api/pipelines/{pipeline_id}/runs/{run_id}/rejects": DOWNLOAD,
        "GET /api/pipelines/{pipeline_id}/runs/{run_id}/summary": ONE,
        "GET /api/pipelines/{pipeline_id}/logs": ONE,
        "GET /api/schedules": ["401", "403", "503"],
        "PUT /api/pipelines/{pipeline_id}/schedule": [
            "401",
            "403",
            "404",
            "413",
            "415",
            "422",
            "503",
        ],
        "GET /api/pipelines/{pipeline_id}/schedule": ONE,
        "DELETE /api/pipelines/{pipeline_id}/schedule": ["401", "403", "404", "422", "503"],
        "POST /api/pipelines/{pipeline_id}/schedule/pause": ["401", "403", "404", "422", "503"],
        "POST /api/pipelines/{pipeline_id}/schedule/resume": ["401", "403", "404", "422", "503"],
    }
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for code, response in operation["responses"].items():
                if code >= "4" and path != "/ready":
                    assert response["content"] == {"application/json": {"schema": ERROR_OUT}}
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert (schemas["ErrorOut"]["required"], schemas["ErrorOut"]["properties"]["detail"]) == (
        ["message", "detail"],
        {
            "anyOf": [
                {"type": "string"},
                {"items": {"$ref": "#/components/schemas/Problem"}, "type": "array"},
            ],
            "title": "Detail",
        },
    )
    assert sorted(schemas["Problem"]["required"]) == ["loc", "msg", "type"]
    ready = spec["paths"]["/ready"]["get"]["responses"]
    assert ready["503"]["content"] == ready["200"]["content"]
    assert ready["503"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/ReadyOut"}}
    }


def _types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a property's schema allows: 'integer', 'string/date-time', a $ref…"""
    if "anyOf" in schema:
        return set().union(*(_types(option) for option in schema["anyOf"]))
    if "$ref" in schema:
        return {schema["$ref"]}
    return {schema["type"] + (f"/{schema['format']}" if "format" in schema else "")}


def test_what_a_read_answers_its_write_takes_back() -> None:
    """Each field a write's body shares with what that write answers (and GET reads) has a type
    the write takes: a schedule's interval_seconds was read as 3600.0, which PUT refuses as
    not a whole number; its timezone as null, which PUT refuses as not a string."""
    spec = openapi()
    schemas = spec["components"]["schemas"]
    pairs = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            sent = operation.get("requestBody", {}).get("content", {}).get("application/json")
            answered = [r for code, r in operation["responses"].items() if code.startswith("2")]
            if sent and answered:
                [answer] = answered
                out = answer["content"]["application/json"]["schema"]["$ref"]
                pairs[f"{method.upper()} {path}"] = (sent["schema"]["$ref"], out)
    assert pairs == {
        "POST /api/pipelines": (
            "#/components/schemas/PipelineCreate",
            "#/components/schemas/PipelineOut",
        ),
        "PUT /api/pipelines/{pipeline_id}/schedule": (
            "#/components/schemas/ScheduleIn",
            "#/components/schemas/ScheduleOut",
        ),
    }
    get = spec["paths"]["/api/pipelines/{pipeline_id}/schedule"]["get"]["responses"]["200"]
    assert get["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ScheduleOut"
    }
    shared = {}
    for sent_ref, out_ref in pairs.values():
        taken = schemas[sent_ref.rpartition("/")[2]]["properties"]
        read = schemas[out_ref.rpartition("/")[2]]["properties"]
        for field in taken.keys() & read.keys():
            shared[f"{out_ref.rpartition('/')[2]}.{field}"] = sorted(_types(read[field]))
            assert _types(read[field]) <= _types(taken[field]), field
    assert shared == {
        "PipelineOut.name": ["string"],
        "PipelineOut.description": ["null", "string"],
        "PipelineOut.record_count": ["integer"],
        "PipelineOut.input_path": ["null", "string"],
        "ScheduleOut.pipeline_id": ["integer"],
        "ScheduleOut.schedule_id": ["string"],
        "ScheduleOut.cron": ["null", "string"],
        "ScheduleOut.interval_seconds": ["integer", "null"],
        "ScheduleOut.anchor_date": ["null", "string/date-time"],
        "ScheduleOut.timezone": ["string"],
        "ScheduleOut.active": ["boolean"],
        "ScheduleOut.next_run_at": ["null", "string/date-time"],
    }


def test_a_download_declares_the_media_types_it_sends() -> None:
    paths = openapi()["paths"]
    for name in ("output", "rejects"):
        answer = paths[f"/api/pipelines/{{pipeline_id}}/runs/{{run_id}}/{name}"]["get"]
        assert sorted(answer["responses"]["200"]["content"]) == [
            "application/vnd.apache.parquet",
            "application/x-ndjson",
            "text/csv",
        ]
