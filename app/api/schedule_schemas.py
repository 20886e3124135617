"""Request and response bodies of pipeline schedules: a schedule read back can be sent back as it
was read, and sets the same schedule (its interval's anchor too, so its runs keep their times)."""

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, is_valid_timezone
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from app.api.field_problems import shown
from app.api.schemas import few_unknown_fields
from app.echoed import said_number
from app.pipeline.schedules import cron_problem
from app.schedule_intervals import LONGEST_INTERVAL, SHORTEST_INTERVAL

EARLIEST_ANCHOR = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_ANCHOR = datetime(2200, 1, 1, tzinfo=UTC)
_READ_ONLY = Field(
    description="read-only: what GET answers; ignored", json_schema_extra={"readOnly": True}
)
_ANCHOR = (
    "interval_seconds only: its runs fall at this time plus whole intervals; the time of the PUT "
    "if omitted. GET answers the schedule's: sent back, its runs keep their times."
)

_ANCHOR_LIKE = "like 2026-01-01T06:00:00Z (UTC) or 2026-01-01T06:00:00+01:00"
_DAY_OR = (
    "cron only: true (as cron does) fires on a day that matches its day-of-month or its "
    "day-of-week, when both are restricted; false: only on a day that matches both "
    "(`0 0 1-7 * 1`, the first Monday). Null (left out) is true."
)
_RRULE = (
    "an RFC 5545 recurrence rule: a schedule set in Prefect itself (its UI or API), which this API "
    "reads but does not set; null for the schedules it sets"
)


def _within_a_year(value: object) -> object:
    """The bound said with its meaning, as other bounds name their setting (the schema's
    `maximum` stays: Field's `le`, never reached by a whole number past it)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > LONGEST_INTERVAL:
        raise ValueError(
            f"must be at most {LONGEST_INTERVAL:,} (366 days); got {said_number(value)}"
        )
    return value


# what _one_kind checks, for schema-driven clients: exactly one of cron and interval_seconds is
# given and not null (a null one counts as left out), anchor_date only beside interval_seconds
_ONE_KIND: dict[str, Any] = {
    "oneOf": [
        {
            "title": "cron",
            "required": ["cron"],
            "properties": {"cron": {"type": "string"}, "anchor_date": {"type": "null"}},
        },
        {
            "title": "interval",
            "required": ["interval_seconds"],
            "properties": {"interval_seconds": {"type": "integer"}},
        },
    ]
}


class ScheduleIn(BaseModel):
    """A cron expression or an interval, in a timezone; Prefect's scheduler carries it out.
    Exactly one of `cron` and `interval_seconds`, the other left out or null; `anchor_date` only
    with `interval_seconds`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_KIND)

    cron: Annotated[str | None, Field(max_length=120, examples=["0 6 * * *"])] = None
    interval_seconds: Annotated[
        StrictInt | None,
        Field(ge=SHORTEST_INTERVAL, le=LONGEST_INTERVAL),
        BeforeValidator(_within_a_year),
    ] = None
    anchor_date: Annotated[
        AwareDatetime | None, Field(description=_ANCHOR, examples=["2026-01-01T06:00:00Z"])
    ] = None
    timezone: Annotated[str, Field(max_length=64, examples=["Europe/Paris"])] = "UTC"
    day_or: Annotated[StrictBool | None, Field(description=_DAY_OR)] = None
    active: Annotated[
        StrictBool,
        Field(
            description="false: set it paused. A PUT replaces the whole schedule: left out, a "
            "paused schedule is active again."
        ),
    ] = True
    # ScheduleOut's own fields: a schedule read back can be sent back whole
    pipeline_id: Annotated[int | None, _READ_ONLY] = None
    schedule_id: Annotated[str | None, _READ_ONLY] = None
    next_run_at: Annotated[datetime | None, _READ_ONLY] = None
    pipeline_exists: Annotated[bool | None, _READ_ONLY] = None  # GET /api/schedules's
    rrule: Annotated[str | None, Field(description=_RRULE)] = None  # null: only read back

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        return few_unknown_fields(cls, data)

    @field_validator("rrule")
    @classmethod
    def _not_an_rrule(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "a recurrence rule is set in Prefect itself, not through this API: send cron or "
                "interval_seconds instead and leave rrule out (or null), or keep editing this "
                "schedule in Prefect"
            )

    @field_validator("cron")
    @classmethod
    def _cron_fires(cls, value: str | None) -> str | None:
        """Spaces around it are no part of it (`"@daily "` was "not a valid cron expression")."""
        value = value.strip() if value is not None else None
        problem = cron_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("anchor_date", mode="wrap")
    @classmethod
    def _anchor_in_a_timezone(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> datetime | None:
        """pydantic said "Input should have timezone info", with no example of one; and took a
        number, or a string of one, as a Unix time: 20260101 was an anchor in August 1970."""
        if _is_number(value):
            raise ValueError(
                f"must be a date and time with its UTC offset, {_ANCHOR_LIKE}, not a number; "
                f"got {shown(value)}"
            )
        try:
            anchor: datetime | None = handler(value)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "timezone_aware":
                raise ValueError(
                    f"needs its UTC offset, {_ANCHOR_LIKE}; got {shown(value)}"
                ) from None
            if exc.errors()[0]["type"].startswith(("datetime_", "date_")):
                raise ValueError(
                    f"must be a date and time with its UTC offset, {_ANCHOR_LIKE}; "
                    f"got {shown(value)}"
                ) from None
            raise
        return anchor

    @field_validator("anchor_date")
    @classmethod
    def _anchor_within_reach(cls, value: datetime | None) -> datetime | None:
        """Prefect keeps every pipeline's schedule on the one deployment: a date its scheduler
        cannot reckon with (year 1 or 9999 in some time zone: OverflowError) stopped the
        scheduling of every pipeline, and the reading of every schedule."""
        if value is not None and not EARLIEST_ANCHOR <= value <= LATEST_ANCHOR:
            raise ValueError(
                f"must be between {EARLIEST_ANCHOR:%Y-%m-%d} and {LATEST_ANCHOR:%Y-%m-%d} (UTC); "
                f"got {value.isoformat()}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not is_valid_timezone(value):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "ScheduleIn":
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron or interval_seconds")
        if self.cron is not None and self.anchor_date is not None:
            raise ValueError("anchor_date goes with interval_seconds, not cron; remove it")
        if self.interval_seconds is not None and self.day_or is not None:
            raise ValueError("day_or goes with cron, not interval_seconds; remove it")
        return self

    def to_prefect(self) -> CronSchedule | IntervalSchedule:
        if self.cron is not None:
            return CronSchedule(
                cron=self.cron, timezone=self.timezone, day_or=self.day_or is not False
            )
        assert self.interval_seconds is not None
        interval = timedelta(seconds=self.interval_seconds)
        if self.anchor_date is None:
            return IntervalSchedule(interval=interval, timezone=self.timezone)
        return IntervalSchedule(
            interval=interval, anchor_date=self.anchor_date, timezone=self.timezone
        )


class ScheduleOut(BaseModel):
    """A schedule as ScheduleIn takes it back: whole seconds, its anchor, a timezone ("UTC"
    for a schedule Prefect holds without one, as Prefect reads it)."""

    pipeline_id: int
    schedule_id: str
    cron: str | None
    interval_seconds: int | None
    anchor_date: datetime | None = Field(description=_ANCHOR)
    timezone: str
    day_or: bool | None = Field(description=_DAY_OR)
    rrule: str | None = Field(description=_RRULE)
    active: bool
    next_run_at: datetime | None = Field(
        description="when the schedule next fires (Prefect's date rules); null while paused"
    )


class ListedSchedule(ScheduleOut):
    """A schedule as GET /api/schedules lists it: also one whose pipeline no longer exists."""

    pipeline_exists: bool = Field(
        description="false: the pipeline is gone (deleted while its schedule was being set, a "
        "crash, a restored backup) but Prefect still keeps its schedule, which makes runs that end "
        "Cancelled without running anything; remove it with DELETE "
        "/api/pipelines/{pipeline_id}/schedule"
    )


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return isinstance(value, int | float) and not isinstance(value, bool)
