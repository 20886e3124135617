"""Drills: faults and delays a stage takes on request (PIPELINE_FAIL_STAGE, PIPELINE_STAGE_DELAY),
for tests and for rehearsing failures on a real stack. Both do nothing unless configured."""

import asyncio

from app.config import get_settings


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
