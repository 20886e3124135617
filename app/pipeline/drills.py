"""Drills: faults and delays a stage takes on request (PIPELINE_FAIL_STAGE, PIPELINE_STAGE_DELAY),
for tests and for rehearsing failures on a real stack. Both do nothing unless configured."""

import asyncio

from app.config import get_settings
from app.models import STAGE_NAMES


class InjectedFaultError(RuntimeError):
    """A failure requested through PIPELINE_FAIL_STAGE, for tests and drills."""


def inject_fault(stage: str, attempt: int) -> None:
    """Raise InjectedFaultError if PIPELINE_FAIL_STAGE names this stage ('stage' or 'stage:N',
    its first N attempts)."""
    spec = get_settings().fail_stage
    if not spec:
        return
    name, _, attempts = spec.partition(":")
    if name == stage and (not attempts or attempt <= int(attempts)):
        raise InjectedFaultError(f"injected failure in {stage} on attempt {attempt}")


async def hold(stage: str) -> None:
    """PIPELINE_STAGE_DELAY='stage:seconds' keeps a stage running, e.g. to cancel it."""
    name, _, seconds = (get_settings().stage_delay or "").partition(":")
    if name == stage and seconds:
        await asyncio.sleep(float(seconds))


def refusal(field: str, value: str) -> str | None:
    """What is wrong with a drill setting's value (`field`: fail_stage or stage_delay), or None."""
    name, colon, number = value.partition(":")
    if field == "fail_stage":
        form = "'stage' (every attempt) or 'stage:N' (its first N attempts)"
        valid = not colon or (number.isdigit() and int(number) >= 1)
    else:
        form = "'stage:seconds'"
        valid = bool(colon) and _seconds(number) is not None
    if name in STAGE_NAMES and valid:
        return None
    return f"{value!r}: give {form}, the stage one of {', '.join(STAGE_NAMES)}"


def _seconds(text: str) -> float | None:
    """`text` as a number of seconds ≥ 0, or None."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None
