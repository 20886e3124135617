"""How the service tells a live run from a dead one: heartbeats, the watchdog's timeouts, and how
long a flow run waits out a database that does not answer. A part of Settings (app/config.py)."""

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings


class LivenessSettings(BaseSettings):
    """The liveness settings of Settings; read only as a part of it (its .env file, its rules)."""

    heartbeat_seconds: float = Field(
        default=5.0, gt=0, validation_alias=AliasChoices("PIPELINE_HEARTBEAT_SECONDS")
    )
    watchdog_interval_seconds: float = Field(
        default=10.0, gt=0, validation_alias=AliasChoices("PIPELINE_WATCHDOG_INTERVAL_SECONDS")
    )
    watchdog_enabled: bool = Field(
        default=True, validation_alias=AliasChoices("PIPELINE_WATCHDOG_ENABLED")
    )
    stale_heartbeat_seconds: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("PIPELINE_STALE_HEARTBEAT_SECONDS")
    )
    no_worker_timeout_seconds: float = Field(
        default=120.0, gt=0, validation_alias=AliasChoices("PIPELINE_NO_WORKER_TIMEOUT_SECONDS")
    )
    queued_timeout_seconds: float = Field(
        default=3600.0, gt=0, validation_alias=AliasChoices("PIPELINE_QUEUED_TIMEOUT_SECONDS")
    )
    pending_timeout_seconds: float = Field(
        default=300.0, gt=0, validation_alias=AliasChoices("PIPELINE_PENDING_TIMEOUT_SECONDS")
    )
    database_retry_seconds: float = Field(
        default=60.0,
        ge=0,
        validation_alias=AliasChoices("PIPELINE_DATABASE_RETRY_SECONDS"),
        description="How long a flow run's status writes, heartbeats and claim wait out a "
        "database that refuses or drops connections (a restart, a failover) before the run "
        "fails; 0: no retry.",
    )

    @model_validator(mode="after")
    def _heartbeats_can_go_stale(self) -> "LivenessSettings":
        """The watchdog fails a running run whose heartbeat is older than the stale age: an age
        under two beats would fail healthy runs between their beats."""
        if self.stale_heartbeat_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"PIPELINE_STALE_HEARTBEAT_SECONDS ({self.stale_heartbeat_seconds:g}) must be at "
                f"least twice PIPELINE_HEARTBEAT_SECONDS ({self.heartbeat_seconds:g}), or the "
                "watchdog fails healthy runs between two heartbeats"
            )
        return self
