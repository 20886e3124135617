"""Request and response bodies of the pipelines API, separate from the tables."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from app.api.control_chars import description_text, name_text
from app.config import get_settings
from app.echoed import first_names, said_number
from app.models import Status
from app.pipeline.input_files import input_dir

PipelineStatus = Literal["created", "pending", "running", "completed", "failed", "cancelled"]
InputSource = Literal["upload", "path", "generated"]


def _digits(value: object) -> object:
    """The dashboard's create form sends its number field as the text the browser holds ("1000").
    Past 18 digits no count is within bounds, and past 4,300 Python refuses the conversion with
    advice for the server's code (`sys.set_int_max_str_digits()`): the bound is said instead."""
    if isinstance(value, str) and value[:1] == "-" and value[1:].isascii() and value[1:].isdigit():
        return int(value) if len(value) <= 19 else value  # the bound says what is accepted
    if isinstance(value, str) and value.isascii() and value.isdigit():
        if len(digits := value.lstrip("0")) > 18:  # leading zeros were always accepted
            raise ValueError(
                f"must be at most {get_settings().max_record_count:,} (PIPELINE_MAX_RECORD_COUNT);"
                f" got a number of {len(digits):,} digits"
            )
        return int(value)
    return value


MOST_UNKNOWN_FIELDS = 20  # as many problems as a 422's message shows (app/api/errors.py)


def few_unknown_fields(model: type[BaseModel], data: Any) -> Any:
    """Refuse a body of many unknown fields with one problem, before pydantic builds one for each:
    110,000 of them in a 1 MB body held the event loop for 2 s."""
    if isinstance(data, dict) and len(data) > MOST_UNKNOWN_FIELDS:
        unknown = [key for key in data if key not in model.model_fields]
        if len(unknown) > MOST_UNKNOWN_FIELDS:
            first = first_names(unknown)
            raise ValueError(
                f"{len(unknown):,} unknown fields ({first}, …); send only "
                f"{', '.join(model.model_fields)}"
            )
    return data


# no control characters (NUL included: PostgreSQL cannot store it), named with their position
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(name_text)]
Description = Annotated[str | None, Field(max_length=2000), AfterValidator(description_text)]
# JSON fields are strict: true is not 1 and "yes" not true (a 422 naming the field instead)
RecordCount = Annotated[
    int,
    BeforeValidator(_digits),
    Field(strict=True, ge=1, description="Synthetic records to generate per run."),
]


class PipelineCreate(BaseModel):
    """A new pipeline; `trigger: true` starts its first run at once."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = None
    record_count: RecordCount = 1000
    input_path: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=1000,
            description="A CSV, JSON Lines or Parquet file under PIPELINE_INPUT_DIR, relative to "
            "it, to use instead of generated records. Or upload a file: multipart/form-data.",
        ),
    ] = None
    trigger: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        return few_unknown_fields(cls, data)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank; give the pipeline a name")
        return value.strip()

    @field_validator("record_count")
    @classmethod
    def _record_count_bound(cls, value: int) -> int:
        limit = get_settings().max_record_count
        if value > limit:
            raise ValueError(
                f"must be at most {limit:,} (PIPELINE_MAX_RECORD_COUNT); got {said_number(value)}"
            )
        return value


class Problem(BaseModel):
    """One problem of a 422: where it is (`loc`, e.g. ["body", "record_count"]) and what."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error's body: `message`, one line for a person naming the field and the fix, and
    `detail` as FastAPI shapes it: a string, or for a 422 the list of problems."""

    message: str
    detail: str | list[Problem]


_ERRORS = {
    400: "the Range header names no range of the file; `message` says why",
    401: "no API key, or a wrong one (API_KEYS is set; for reads too with API_KEYS_FOR_READS)",
    403: "a write sent by another site's or origin's page (Sec-Fetch-Site, Origin or Referer); "
    "a request that needs no key, sent to a host name this service does not answer to "
    "(PIPELINE_ALLOWED_HOSTS)",
    404: "no such pipeline, run, schedule or file; `message` says which and why",
    409: "not in the pipeline's current state; `message` says what to do",
    413: "a body larger than PIPELINE_MAX_BODY_BYTES (an upload: PIPELINE_MAX_UPLOAD_BYTES)",
    415: "a body sent with a Content-Encoding other than identity; send it uncompressed",
    416: "the Range starts past the end of the file; Content-Range gives its size",
    422: "bad input: `message` names each field and the fix; `detail` lists them with their loc",
    503: "Prefect or the database is unreachable, or PIPELINE_DATA_DIR cannot be written; "
    "`message` says what to do",
    507: "PIPELINE_DATA_DIR is out of space; `message` says how to free some",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a router or route: these error statuses, each with the ErrorOut body."""
    return {code: {"model": ErrorOut, "description": _ERRORS[code]} for code in codes}


def openapi_error(code: int) -> dict[str, Any]:
    """An error status as the OpenAPI document lists it under an operation's `responses`."""
    schema = {"$ref": f"#/components/schemas/{ErrorOut.__name__}"}
    return {"description": _ERRORS[code], "content": {"application/json": {"schema": schema}}}


class StageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    status: Status
    message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    records_in: int | None
    records_out: int | None
    records_rejected: int | None
    attempts: int
    error: str | None


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: Status
    record_count: int
    prefect_flow_run_id: str | None
    prefect_flow_run_url: str | None = None
    input_file: str | None
    output_file: str | None
    records_processed: int | None
    records_rejected: int | None = None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    stages: list[StageOut] = []


class PipelineOut(BaseModel):
    """A pipeline with the status of its latest run ("created" before its first run)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    record_count: int
    input_path: str | None = Field(
        default=None,
        description="The file its runs read, as `input_path` takes it: relative to "
        "PIPELINE_INPUT_DIR. An uploaded file's (or one named under an earlier PIPELINE_INPUT_DIR) "
        "is its absolute path on the server, which a create refuses: upload it again. "
        "null: generated records.",
    )
    input_format: str | None = None
    input_source: InputSource = Field(
        description="Where its runs' records come from: `upload`, a file uploaded with the "
        "create (input_path is where the server keeps it); `path`, a file named under "
        "PIPELINE_INPUT_DIR (input_path); `generated`, synthetic records (input_path is null)."
    )
    created_at: datetime
    status: PipelineStatus
    latest_run: RunOut | None
    runs_in_flight: int = Field(
        description="Its runs pending or running: 0 or 1 (the latest) as a rule; more when a run "
        "triggered while another ran, or ended first. Cancel stops them all."
    )

    @field_validator("input_path")
    @classmethod
    def _as_named(cls, value: str | None) -> str | None:
        """Stored absolute (the runs read it there), shown as the create took it."""
        return input_dir.shown(value)


class PipelinePage(BaseModel):
    items: list[PipelineOut]
    total: int
    page: int
    page_size: int


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    page: int
    page_size: int


class TriggerOut(BaseModel):
    pipeline_id: int
    run_id: int
    prefect_flow_run_id: str
    prefect_flow_run_url: str
    status: Status
