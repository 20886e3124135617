"""The text fields of the multipart/form-data create (POST /api/pipelines with a file), as strict
as the JSON create's, and their account in the OpenAPI document."""

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator

from app.api.schemas import Description, Name, PipelineCreate


def _form_bool(value: object) -> object:
    """A form's text as a boolean, as strict as JSON's: `true`/`false` (curl -F, the dashboard,
    the CLI; any case: Python's requests sends `True`) and `on`, what a checked HTML checkbox
    sends (an unchecked one sends nothing). `yes`, `1` or `t` is refused, not guessed at."""
    if isinstance(value, str):
        if value.lower() in ("true", "on"):
            return True
        if value.lower() == "false":
            return False
        shown = json.dumps(value if len(value) <= 40 else f"{value[:39]}…", ensure_ascii=False)
        raise ValueError(
            f"must be true or false (or on, as an HTML checkbox sends it), not {shown}"
        )
    return value


FormBool = Annotated[
    StrictBool,
    BeforeValidator(_form_bool),
    Field(description="true or false; on (a checked HTML checkbox) is true"),
]


class PipelineUpload(BaseModel):
    """The text fields of a multipart/form-data pipeline creation, beside its `file`."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = None
    trigger: FormBool = False
    format: Literal["csv", "jsonl", "parquet"] | None = None

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        return PipelineCreate._name_not_blank(value)


def upload_request_body() -> dict[str, Any]:
    """OpenAPI's account of the multipart/form-data body of POST /api/pipelines (app/api/uploads.py
    parses it by hand, as it streams): PipelineUpload's fields and the file."""
    schema = PipelineUpload.model_json_schema()
    schema["properties"]["file"] = {
        "type": "string",
        "format": "binary",
        "description": "a CSV, JSON Lines or Parquet file (gzip/bz2/xz compressed too)",
    }
    schema["required"] = [*schema.get("required", []), "file"]
    return {"requestBody": {"content": {"multipart/form-data": {"schema": schema}}}}
