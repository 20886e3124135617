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
