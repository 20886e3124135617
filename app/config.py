"""Settings: the one place that reads the service's environment."""

import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.access_settings import AccessSettings
from app.liveness_settings import LivenessSettings
from app.shown import shown_prefect_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the .env read, by every process: the project's, or PIPELINE_ENV_FILE (the tests point it at an
# empty file, so a developer's .env never reaches them or the stacks they start)
ENV_FILE = Path(os.environ.get("PIPELINE_ENV_FILE") or PROJECT_ROOT / ".env")
DEFAULT_PREFECT_API_URL = "http://127.0.0.1:4200/api"
DATABASE_URL_FORMS = (
    "write sqlite:///path/to/pipelines.db or postgresql://user:password@host:5432/database"
)


def _package_version() -> str:
    """The installed service's version: the default DD_VERSION."""
    try:
        return metadata.version("data-pipeline-service")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class Settings(AccessSettings, LivenessSettings):
    """Service configuration, read once from the environment (and an optional .env file); who
    may call the API is in AccessSettings, heartbeats and the watchdog's timeouts in
    LivenessSettings."""

    # the project's .env, wherever a process runs: a flow run works in app/pipeline
    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore")

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'pipelines.db'}",
        description="SQLAlchemy async URL; an embedded SQLite file when unset.",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "data",
        validation_alias=AliasChoices("PIPELINE_DATA_DIR", "DATA_DIR"),
        description="Root of the per-run directories holding each stage's Parquet files.",
    )
    prefect_api_url: str = Field(
        default=DEFAULT_PREFECT_API_URL,
        validation_alias=AliasChoices("PREFECT_API_URL"),
    )
    prefect_ui_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PREFECT_UI_URL"),
        description="Base URL of the Prefect UI for run links; derived from the API URL if unset.",
    )
    # fixed, not read from the environment: deploy.py registers the deployment under this name
    deployment_name: ClassVar[str] = "Data Pipeline/data-pipeline-deployment"
    work_pool_name: str = "default"
    prefect_timeout_seconds: float = Field(
        default=10.0, gt=0, validation_alias=AliasChoices("PIPELINE_PREFECT_TIMEOUT_SECONDS")
    )
    # one API request's time on Prefect in all, retries included (app/pipeline/prefect_budget.py)
    prefect_request_seconds: float = Field(
        default=20.0, gt=0, validation_alias=AliasChoices("PIPELINE_PREFECT_REQUEST_SECONDS")
    )

    input_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PIPELINE_INPUT_DIR"),
        description="Directory whose files a pipeline may name as input_path; unset: none.",
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3, gt=0, validation_alias=AliasChoices("PIPELINE_MAX_UPLOAD_BYTES")
    )
    max_input_bytes: int = Field(
        default=16 * 1024**3,
        gt=0,
        validation_alias=AliasChoices("PIPELINE_MAX_INPUT_BYTES"),
        description="Largest input file once decompressed: a few KB of gzip can unpack to TBs.",
    )
    max_input_columns: int = Field(
        default=500,
        ge=7,  # the required columns
        validation_alias=AliasChoices("PIPELINE_MAX_INPUT_COLUMNS"),
        description="Most columns an input file may have, the required ones included (a 422 past "
        "it): a stage holds a few row groups of every column at once (about 32 MiB each, at "
        "most 256,000 rows).",
    )
    retention_days: float = Field(
        default=30.0,
        ge=0,
        le=36_500,  # a century; past that a date overflowed and every sweep failed
        validation_alias=AliasChoices("PIPELINE_RETENTION_DAYS"),
        description="Finished runs' directories are removed after this many days; 0 keeps them.",
    )
    keep_intermediates: bool = Field(
        default=False,
        validation_alias=AliasChoices("PIPELINE_KEEP_INTERMEDIATES"),
        description="Keep completed runs' ingested and processed files (removed by default).",
    )
    seed: int = Field(default=42, validation_alias=AliasChoices("PIPELINE_SEED"))
    max_record_count: int = Field(  # the runs table's INTEGER column holds up to 2**31 - 1
        default=50_000_000,
        ge=1,
        le=2**31 - 1,
        validation_alias=AliasChoices("PIPELINE_MAX_RECORD_COUNT"),
    )
    batch_rows: int = Field(
        default=1_000_000, gt=0, validation_alias=AliasChoices("PIPELINE_BATCH_ROWS")
    )
    flow_retries: int = Field(
        default=0, ge=0, validation_alias=AliasChoices("PIPELINE_FLOW_RETRIES")
    )
    flow_retry_delay_seconds: int = Field(
        default=10, ge=0, validation_alias=AliasChoices("PIPELINE_FLOW_RETRY_DELAY_SECONDS")
    )
    deployment_concurrency_limit: int | None = Field(
        default=None,
        ge=1,
        validation_alias=AliasChoices("PIPELINE_DEPLOYMENT_CONCURRENCY_LIMIT"),
        description="A hard cap on pipelines running at once, kept by Prefect (deploy.py).",
    )
    read_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        validation_alias=AliasChoices("PIPELINE_READ_CACHE_SECONDS"),
        description="How long GET /api/pipelines/{id} may answer a finished pipeline from memory "
        "(this process's own writes clear it at once); 0 turns the cache off.",
    )
    warm_start: bool = Field(
        default=True,
        validation_alias=AliasChoices("PIPELINE_WARM_START"),
        description="Flow runs start through app.pipeline.launcher, forked from the worker's "
        "warm zygote (python -m app.pipeline.worker); false keeps Prefect's own start.",
    )
    dask_partitions: int = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("PIPELINE_DASK_PARTITIONS"),
        description="Row ranges the transform stage fans out over on Dask; 0 keeps it in the "
        "flow-run process.",
    )
    dask_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PIPELINE_DASK_ADDRESS"),
        description="Dask scheduler (tcp://host:8786) for the fan-out; a LocalCluster per run "
        "when unset.",
    )
    task_tags_csv: str = Field(
        default="data-pipeline",
        validation_alias=AliasChoices("PIPELINE_TASK_TAGS"),
        description="Comma-separated tags on every stage task: filter task runs by them in the "
        "Prefect UI, or cap stage work across all workers with a tag concurrency limit; empty: "
        "no tags.",
    )
    fail_stage: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PIPELINE_FAIL_STAGE"),
        description="Fault injection: 'stage' fails that stage on every attempt, "
        "'stage:N' fails its first N attempts. For tests and drills only.",
    )

    idempotency_window_seconds: float = Field(
        default=86_400.0, gt=0, validation_alias=AliasChoices("IDEMPOTENCY_WINDOW_SECONDS")
    )
    max_body_bytes: int = Field(
        default=1_048_576, gt=0, validation_alias=AliasChoices("PIPELINE_MAX_BODY_BYTES")
    )
    stage_delay: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PIPELINE_STAGE_DELAY"),
        description="Drills: 'stage:seconds' holds that stage that long before its work.",
    )
    # Datadog (app/observability/): off unless DD_AGENT_HOST is set or DD_TRACE_ENABLED=true.
    dd_service: str = Field(
        default="data-pipeline-service", validation_alias=AliasChoices("DD_SERVICE")
    )
    dd_env: str = Field(default="local", validation_alias=AliasChoices("DD_ENV"))
    dd_version: str = Field(
        default_factory=_package_version, validation_alias=AliasChoices("DD_VERSION")
    )
    dd_agent_host: str | None = Field(default=None, validation_alias=AliasChoices("DD_AGENT_HOST"))
    dd_trace_agent_port: int = Field(
        default=8126, validation_alias=AliasChoices("DD_TRACE_AGENT_PORT")
    )
    dd_dogstatsd_port: int = Field(default=8125, validation_alias=AliasChoices("DD_DOGSTATSD_PORT"))
    dd_trace_enabled: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("DD_TRACE_ENABLED"),
        description="true traces to DD_AGENT_HOST (default 127.0.0.1); false never traces; "
        "unset traces exactly when DD_AGENT_HOST is set.",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """A URL SQLAlchemy can read, of a database the service runs on: a typo otherwise
        failed each process with SQLAlchemy's own ArgumentError when it first connected."""
        try:
            backend = make_url(value).get_backend_name()
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ValueError(f"not a database URL; {DATABASE_URL_FORMS}") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"a {backend} database is not supported; {DATABASE_URL_FORMS}")
        return async_database_url(value)

    @field_validator("data_dir", "input_dir")
    @classmethod
    def _under_the_root(cls, value: Path | None) -> Path | None:
        """A relative directory is under the project's root, for every process alike (a flow
        run works in app/pipeline)."""
        return value if value is None or value.is_absolute() else PROJECT_ROOT / value

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        """An empty variable means the default: docker-compose.yml passes every setting, empty
        when .env leaves it out. PIPELINE_TASK_TAGS alone gives empty a meaning: no tags."""
        if not isinstance(data, dict):
            return data
        return {
            key: value
            for key, value in data.items()
            if value != "" or str(key).upper() == "PIPELINE_TASK_TAGS"
        }

    @field_validator("fail_stage", "stage_delay")
    @classmethod
    def _drill(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A drill names a stage and a number: a typo would otherwise fail a real run with
        Python's own ValueError, or quietly drill nothing."""
        from app.pipeline.drills import refusal  # here: drills reads these settings

        if value is not None and (problem := refusal(str(info.field_name), value)):
            raise ValueError(problem)
        return value

    @field_validator("prefect_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def task_tags(self) -> list[str]:
        return [tag.strip() for tag in self.task_tags_csv.split(",") if tag.strip()]

    @property
    def prefect_ui_base(self) -> str:
        """The Prefect UI's address: PREFECT_UI_URL, else the API URL without its /api suffix."""
        if self.prefect_ui_url:
            return self.prefect_ui_url.rstrip("/")
        return shown_prefect_url(self.prefect_api_url).removesuffix("/api")  # links: no password


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def async_database_url(value: str) -> str:
    """Plain postgresql:// and sqlite:// URLs with the async driver for them; a relative SQLite
    path under the project's root, for every process alike."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if value.startswith(plain):
            value = driver + value.removeprefix(plain)
    if not value.startswith("sqlite"):
        return value
    url = make_url(value)
    if url.database and url.database != ":memory:" and not Path(url.database).is_absolute():
        return url.set(database=str(PROJECT_ROOT / url.database)).render_as_string()
    return value
