"""Pipeline schedules, carried out by Prefect: each is a schedule of the deployment with the
pipeline's parameters and the slug `pipeline-<id>`, so it survives restarts of every process.

Every pipeline's schedule lives on the one deployment, and Prefect removes *all* of a deployment's
future scheduled runs whenever any of its schedules is changed or removed. Its scheduler puts them
back only on its next loop (60 s by default), and runs due in between are never made. So each
change here asks Prefect to schedule the deployment again at once: no other pipeline loses a run.
"""

from contextlib import suppress
from datetime import UTC, datetime
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.objects import DeploymentSchedule, FlowRun
from prefect.client.schemas.schedules import SCHEDULE_TYPES
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.server.schemas import schedules as server_schedules

from app.pipeline import orchestrator, waiting_runs

SCHEDULE_SLUG_PREFIX = "pipeline-"
SCHEDULE_STOPPED = "skipped: the pipeline's schedule was paused or removed before this run started"


def schedule_slug(pipeline_id: int) -> str:
    """Each pipeline's schedule is a schedule of the deployment, known by this slug."""
    return f"{SCHEDULE_SLUG_PREFIX}{pipeline_id}"


def cron_problem(cron: str) -> str | None:
    """What is wrong with a cron expression for a schedule, or None.

    A cron that names no real date (the 30th of February) is valid syntax, but Prefect's
    scheduler fails on it, and with it on every other pipeline's schedule of the deployment.
    croniter reads a sixth field as seconds: `0 0 6 * * *`, "06:00" to a Quartz user, would
    start a run every second of the 6th.
    """
    try:
        rules = server_schedules.CronSchedule(cron=cron)
    except ValueError:
        return (
            f"{cron!r} is not a valid cron expression "
            "(five fields: minute hour day-of-month month day-of-week)"
        )
    if not cron.strip().startswith("@") and len(cron.split()) != 5:
        return (
            f"{cron!r} has {len(cron.split())} fields; a cron has five: minute hour day-of-month "
            "month day-of-week (no seconds)"
        )
    try:
        next(rules._get_dates_generator(n=1))
    except ValueError:  # croniter's "failed to find next date"
        fields = cron.split()
        if len(fields) == 5 and "#" in fields[4] and fields[2] != "*":
            return (
                f"{cron!r} never fires: Prefect's cron reader (croniter) finds no date for a "
                f"day-of-month ({fields[2]}) beside an nth weekday ({fields[4]}); keep one of "
                "them and use * for the other"
            )
        return f"{cron!r} never fires: no date matches its day-of-month and month; change them"
    return None


async def next_run_at(schedule: DeploymentSchedule) -> datetime | None:
    """When the schedule next fires, by Prefect's own date rules; None while it is paused or
    when it never fires."""
    if not schedule.active:
        return None
    rules = getattr(server_schedules, type(schedule.schedule).__name__, None)
    if rules is None:  # a kind of schedule this Prefect's server does not know
        return None
    try:
        dates = await rules.model_validate(schedule.schedule.model_dump()).get_dates(n=1)
    except (ValueError, OverflowError):  # a cron that never fires, dates past year 9999
        return None
    return dates[0].astimezone(UTC) if dates else None


async def read_pipeline_schedules() -> dict[int, DeploymentSchedule]:
    """Every pipeline's schedule, by pipeline id, as Prefect holds them."""
    async with orchestrator.prefect_client() as client:
        _, schedules = await _deployment_schedules(client)
    return {
        int(schedule.slug.removeprefix(SCHEDULE_SLUG_PREFIX)): schedule
        for schedule in schedules
        if schedule.slug and schedule.slug.removeprefix(SCHEDULE_SLUG_PREFIX).isdigit()
    }


async def set_pipeline_schedule(
    *, pipeline_id: int, record_count: int, schedule: SCHEDULE_TYPES, active: bool
) -> DeploymentSchedule | None:
    """Create or replace the pipeline's schedule: Prefect's scheduler then creates its runs.

    None when a request at the same time (a DELETE of the schedule or of its pipeline) removed
    it before it could be read back: nothing of this request is left scheduled then.
    """
    wanted = DeploymentScheduleCreate(
        schedule=schedule,
        active=active,
        parameters=schedule_parameters(pipeline_id, record_count),
        slug=schedule_slug(pipeline_id),
    )
    async with orchestrator.prefect_client() as client:
        deployment_id, existing = await _deployment_schedule(client, pipeline_id)
        waited = await waiting_runs.read_waiting(client, deployment_id, pipeline_id)
        await _create_or_replace(client, deployment_id, pipeline_id, existing, wanted)
        await _settle(client, deployment_id, pipeline_id, stopped=not active, waited=waited)
        return await _find_schedule(client, deployment_id, pipeline_id)


async def _create_or_replace(
    client: PrefectClient,
    deployment_id: UUID,
    pipeline_id: int,
    existing: DeploymentSchedule | None,
    wanted: DeploymentScheduleCreate,
) -> None:
    """Make `wanted` the pipeline's schedule, as if this request came after any other at the same
    time: one created meanwhile is replaced, and one removed meanwhile is made again."""
    for _ in range(3):  # a race lost each time: another request's outcome stands
        if existing is None:
            try:
                await client.create_deployment_schedules(deployment_id, [wanted])
                return
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 409:  # 409: the slug is taken
                    raise
            existing = await _find_schedule(client, deployment_id, pipeline_id)
        else:
            try:
                await client.update_deployment_schedule(
                    deployment_id,
                    existing.id,
                    active=wanted.active,
                    schedule=wanted.schedule,
                    parameters=wanted.parameters,
                )
                return
            except ObjectNotFound:
                existing = None


def schedule_parameters(pipeline_id: int, record_count: int) -> dict[str, int]:
    """The flow parameters of every run a pipeline's schedule makes."""
    return {"pipeline_id": pipeline_id, "record_count": record_count}


async def set_pipeline_schedule_active(
    pipeline_id: int, active: bool, *, record_count: int
) -> DeploymentSchedule | None:
    """Pause (active False) or resume a pipeline's schedule; None when it has none (also when a
    request at the same time removed it)."""
    async with orchestrator.prefect_client() as client:
        deployment_id, existing = await _deployment_schedule(client, pipeline_id)
        if existing is None:
            return None
        waited = await waiting_runs.read_waiting(client, deployment_id, pipeline_id)
        # Prefect 3.8.8's server takes a PATCH without parameters as parameters={}: every run
        # the schedule made after that would start with no pipeline_id and fail
        try:
            await client.update_deployment_schedule(
                deployment_id,
                existing.id,
                active=active,
                parameters=schedule_parameters(pipeline_id, record_count),
            )
        except ObjectNotFound:  # removed meanwhile (a DELETE of it, or of its pipeline)
            return None
        await _settle(client, deployment_id, pipeline_id, stopped=not active, waited=waited)
        return await _find_schedule(client, deployment_id, pipeline_id)


async def delete_pipeline_schedule(pipeline_id: int) -> DeploymentSchedule | None:
    """Remove the pipeline's schedule; the one removed (to put back), or None when it had none."""
    async with orchestrator.prefect_client() as client:
        deployment_id, existing = await _deployment_schedule(client, pipeline_id)
        if existing is None:
            return None
        waited = await waiting_runs.read_waiting(client, deployment_id, pipeline_id)
        with suppress(ObjectNotFound):  # a request racing this one removed it first
            await client.delete_deployment_schedule(deployment_id, existing.id)
        await _settle(client, deployment_id, pipeline_id, stopped=True, waited=waited)
        return existing


async def _deployment_schedules(client: PrefectClient) -> tuple[UUID, list[DeploymentSchedule]]:
    """The deployment's id and its schedules. The id is cached: a deployment deleted or created
    again since (deploy.py after a server reset) is looked up once more, and a missing one is
    "Prefect unavailable" with how to create it."""
    for refresh in (False, True):
        deployment_id = await orchestrator.read_deployment_id(client, refresh=refresh)
        with suppress(ObjectNotFound):
            return deployment_id, await client.read_deployment_schedules(deployment_id)
    raise orchestrator.deployment_gone()


async def _deployment_schedule(
    client: PrefectClient, pipeline_id: int
) -> tuple[UUID, DeploymentSchedule | None]:
    """The deployment's id and the pipeline's schedule of it, if it has one."""
    deployment_id, schedules = await _deployment_schedules(client)
    return deployment_id, _slugged(schedules, pipeline_id)


async def _find_schedule(
    client: PrefectClient, deployment_id: UUID, pipeline_id: int
) -> DeploymentSchedule | None:
    return _slugged(await client.read_deployment_schedules(deployment_id), pipeline_id)


def _slugged(schedules: list[DeploymentSchedule], pipeline_id: int) -> DeploymentSchedule | None:
    return next((s for s in schedules if s.slug == schedule_slug(pipeline_id)), None)


async def schedule_stopped(run: FlowRun, pipeline_id: int) -> bool:
    """In the flow-run process: is this a scheduled run whose schedule has since been paused or
    removed? Then the flow starts nothing and ends Cancelled with SCHEDULE_STOPPED.

    Pausing through the API removes the schedule's waiting runs, but one can still reach a
    worker: a run Prefect's scheduler made while the pause was under way, or any run already due
    when the schedule was paused from the Prefect UI (Prefect removes only future ones). A run
    Prefect retries has started already: a pause stops the runs to come, not its next attempt.
    """
    if not run.auto_scheduled or run.deployment_id is None or run.run_count > 1:
        return False
    async with get_client() as client:  # the run's own Prefect settings, from its environment
        found = await client.read_deployment_schedules(run.deployment_id)
    slug = schedule_slug(pipeline_id)
    return not any(schedule.slug == slug and schedule.active for schedule in found)


async def _settle(
    client: PrefectClient,
    deployment_id: UUID,
    pipeline_id: int,
    *,
    stopped: bool,
    waited: list[UUID],
) -> None:
    """After any change of a pipeline's schedule: a stopped one (paused or removed) leaves nothing
    waiting to start, the runs of those that `waited` before the change and are gone are
    cancelled, and every other pipeline's upcoming runs are made again."""
    if stopped:
        await waiting_runs.delete_waiting(client, deployment_id, pipeline_id)
    await waiting_runs.cancel_runs_of_gone(client, waited)
    await _schedule_runs(client, deployment_id)


async def _schedule_runs(client: PrefectClient, deployment_id: UUID) -> None:
    """Have Prefect make the deployment's upcoming scheduled runs now, not on its next loop.

    Idempotent: a run Prefect already has for a schedule and a time is not made twice.
    """
    await client.request(
        "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={}
    )
