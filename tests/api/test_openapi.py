"""The OpenAPI document (/docs, client generators): every route once, both bodies of the create."""

import warnings
from typing import Any

import jsonschema
from pydantic import ValidationError

from app.api.schedule_schemas import ScheduleIn
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
# every operation's: BodySizeLimit refuses a body too large (413) or content-coded (415) before
# any route, a GET's too (tests/api/test_body_refusals.py sends them)
BODY = ["413", "415"]
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
    expected = {
        "GET /health": [],
        "GET /ready": ["401", "403", "503"],
        "POST /api/pipelines": ["401", "403", "409", "422", "503", "507"],
        "GET /api/pipelines": READ,
        "GET /api/pipelines/{pipeline_id}": ONE,
        "DELETE /api/pipelines/{pipeline_id}": WRITE,
        "GET /api/pipelines/{pipeline_id}/stages": ONE,
        "POST /api/pipelines/{pipeline_id}/trigger": WRITE,
        "POST /api/pipelines/{pipeline_id}/retry": WRITE,
        "POST /api/pipelines/{pipeline_id}/cancel": WRITE,
        "GET /api/pipelines/{pipeline_id}/runs": ONE,
        "GET /api/pipelines/{pipeline_id}/runs/{run_id}": ONE,
        "GET /api/pipelines/{pipeline_id}/runs/{run_id}/output": DOWNLOAD,
        "GET /api/pipelines/{pipeline_id}/runs/{run_id}/rejects": DOWNLOAD,
        "GET /api/pipelines/{pipeline_id}/runs/{run_id}/summary": ONE,
        "GET /api/pipelines/{pipeline_id}/logs": ONE,
        "GET /api/schedules": ["401", "403", "503"],
        "PUT /api/pipelines/{pipeline_id}/schedule": WRITE,  # 409: removed by racing requests
        "GET /api/pipelines/{pipeline_id}/schedule": ONE,
        "DELETE /api/pipelines/{pipeline_id}/schedule": ONE,
        "POST /api/pipelines/{pipeline_id}/schedule/pause": ONE,
        "POST /api/pipelines/{pipeline_id}/schedule/resume": ONE,
    }
    assert declared == {operation: sorted(codes + BODY) for operation, codes in expected.items()}
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
        "ScheduleOut.day_or": ["boolean", "null"],
        "ScheduleOut.rrule": ["null", "string"],
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


def test_a_schedule_s_one_kind_is_in_its_schema_as_the_api_checks_it() -> None:
    """ "Exactly one of cron or interval_seconds" (and anchor_date only with an interval) was
    checked by PUT but not in the schema: a schema-driven client sent both, or neither."""
    schema = openapi()["components"]["schemas"]["ScheduleIn"]
    validator = jsonschema.Draft202012Validator(schema)
    cron, every, anchor = {"cron": "0 6 * * *"}, {"interval_seconds": 3600}, "2026-01-01T06:00:00Z"
    bodies = {
        "cron": (cron, True),
        "interval": (every, True),
        "interval, anchor": ({**every, "anchor_date": anchor}, True),
        "cron, null interval": ({**cron, "interval_seconds": None}, True),
        "null cron, interval": ({"cron": None, **every}, True),
        "cron, null anchor": ({**cron, "anchor_date": None}, True),
        "a schedule read back": (
            {
                "pipeline_id": 1,
                "schedule_id": "s",
                "cron": None,
                **every,
                "anchor_date": anchor,
                "timezone": "UTC",
                "active": True,
                "next_run_at": None,
            },
            True,
        ),
        "both": ({**cron, **every}, False),
        "neither": ({"timezone": "UTC"}, False),
        "both null": ({"cron": None, "interval_seconds": None}, False),
        "cron, anchor": ({**cron, "anchor_date": anchor}, False),
    }

    def accepted(body: dict[str, Any]) -> bool:
        try:
            ScheduleIn.model_validate(body)
        except ValidationError:
            return False
        return True

    verdicts = {
        name: (validator.is_valid(body), accepted(body)) for name, (body, _) in bodies.items()
    }
    assert verdicts == {name: (ok, ok) for name, (_, ok) in bodies.items()}
