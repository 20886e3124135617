"""Settings parsed from the environment (no I/O)."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import PROJECT_ROOT, Settings


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        (None, ["data-pipeline"]),  # the default
        ("etl, nightly ,,team-a", ["etl", "nightly", "team-a"]),
        ("", []),  # no tags: no tag-concurrency check before each task
    ],
)
def test_task_tags(monkeypatch: pytest.MonkeyPatch, value: str | None, tags: list[str]) -> None:
    if value is None:
        monkeypatch.delenv("PIPELINE_TASK_TAGS", raising=False)
    else:
        monkeypatch.setenv("PIPELINE_TASK_TAGS", value)
    assert Settings(_env_file=None).task_tags == tags


def test_batch_rows_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_BATCH_ROWS", "0")
    with pytest.raises(
        ValidationError, match=r"PIPELINE_BATCH_ROWS\n  Input should be greater than 0"
    ):
        Settings(_env_file=None)


def test_max_record_count_fits_the_integer_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_MAX_RECORD_COUNT", str(2**31))
    with pytest.raises(
        ValidationError,
        match=r"PIPELINE_MAX_RECORD_COUNT\n  Input should be less than or equal to 2147483647",
    ):
        Settings(_env_file=None)


def test_the_prefect_timeout_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    """0 made every Prefect call an instant ConnectTimeout, reported as 'Prefect unreachable'."""
    monkeypatch.setenv("PIPELINE_PREFECT_TIMEOUT_SECONDS", "0")
    with pytest.raises(
        ValidationError,
        match=r"PIPELINE_PREFECT_TIMEOUT_SECONDS\n  Input should be greater than 0",
    ):
        Settings(_env_file=None)


def test_a_heartbeat_must_have_time_to_beat_before_it_is_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_HEARTBEAT_SECONDS", "5")
    monkeypatch.setenv("PIPELINE_STALE_HEARTBEAT_SECONDS", "9")
    with pytest.raises(
        ValidationError,
        match=r"PIPELINE_STALE_HEARTBEAT_SECONDS \(9\) must be at least twice "
        r"PIPELINE_HEARTBEAT_SECONDS \(5\), or the watchdog fails healthy runs between two "
        r"heartbeats",
    ):
        Settings(_env_file=None)
    monkeypatch.setenv("PIPELINE_STALE_HEARTBEAT_SECONDS", "10")
    assert Settings(_env_file=None).stale_heartbeat_seconds == 10


def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-compose.yml passes every setting, empty when .env leaves it out."""
    for name in ("PIPELINE_RETENTION_DAYS", "PIPELINE_DEPLOYMENT_CONCURRENCY_LIMIT", "DD_VERSION"):
        monkeypatch.setenv(name, "")
    settings = Settings(_env_file=None)
    assert (settings.retention_days, settings.deployment_concurrency_limit) == (30.0, None)
    assert settings.dd_version == Settings.model_fields["dd_version"].default_factory()  # type: ignore[misc]


def test_relative_paths_and_the_env_file_are_the_project_s_wherever_a_process_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A flow run works in app/pipeline: it read no .env there, and a relative path in one meant
    another directory (the API wrote one database, the flow runs another)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PIPELINE_SEED=7\n")  # not the project's: not read
    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/pipelines.db")
    monkeypatch.setenv("PIPELINE_DATA_DIR", "var/data")
    monkeypatch.setenv("PIPELINE_INPUT_DIR", "inputs")
    settings = Settings()
    assert settings.seed == Settings.model_fields["seed"].default
    assert settings.database_url == f"sqlite+aiosqlite:///{PROJECT_ROOT}/var/pipelines.db"
    assert (settings.data_dir, settings.input_dir) == (
        PROJECT_ROOT / "var" / "data",
        PROJECT_ROOT / "inputs",
    )
    for kept in ("sqlite+aiosqlite:////srv/p.db", "sqlite+aiosqlite:///:memory:"):
        monkeypatch.setenv("DATABASE_URL", kept)
        assert Settings().database_url == kept


def test_retention_days_past_a_century_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000,000 days overflowed a date: every retention pass failed, nothing was trimmed."""
    monkeypatch.setenv("PIPELINE_RETENTION_DAYS", "1000000")
    with pytest.raises(ValidationError, match="less than or equal to 36500"):
        Settings(_env_file=None)


@pytest.mark.parametrize(
    ("name", "value", "form"),
    [
        (
            "PIPELINE_FAIL_STAGE",
            "transfrom",
            "'stage' (every attempt) or 'stage:N' (its first N attempts)",
        ),
        (
            "PIPELINE_FAIL_STAGE",
            "transform:two",
            "'stage' (every attempt) or 'stage:N' (its first N attempts)",
        ),
        (
            "PIPELINE_FAIL_STAGE",
            "transform:0",
            "'stage' (every attempt) or 'stage:N' (its first N attempts)",
        ),
        ("PIPELINE_STAGE_DELAY", "ingest:soon", "'stage:seconds'"),
        ("PIPELINE_STAGE_DELAY", "ingest", "'stage:seconds'"),
        ("PIPELINE_STAGE_DELAY", "ingest:nan", "'stage:seconds'"),
    ],
)
def test_a_drill_that_names_no_stage_or_number_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, form: str
) -> None:
    monkeypatch.setenv(name, value)
    stages = "generate, ingest, process, transform, export"
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert refused.value.errors()[0]["msg"] == (
        f"Value error, {value!r}: give {form}, the stage one of {stages}"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PIPELINE_FAIL_STAGE", "transform"),
        ("PIPELINE_FAIL_STAGE", "generate:1"),
        ("PIPELINE_STAGE_DELAY", "ingest:2.5"),
    ],
)
def test_drills_as_documented_are_taken(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert (settings.fail_stage, settings.stage_delay) == (
        (value, None) if name == "PIPELINE_FAIL_STAGE" else (None, value)
    )


def test_the_prefect_ui_links_carry_no_credentials_of_the_api_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every run's "Open in the Prefect UI" link showed http://admin:s3cret@… to its reader."""
    monkeypatch.setenv("PREFECT_API_URL", "http://admin:s3cret@prefect.internal:4200/api?x=1")
    assert Settings(_env_file=None).prefect_ui_base == "http://prefect.internal:4200"
