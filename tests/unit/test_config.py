"""Settings parsed from the environment (no I/O)."""

import pytest
from pydantic import ValidationError

from app.config import Settings


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
