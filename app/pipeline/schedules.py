"""Pipeline schedules, carried out by Prefect: each is a schedule of the deployment with the
pipeline's parameters and the slug `pipeline-<id>`, so it survives restarts of every process."""

from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

from app.pipeline import orchestrator

SCHEDULE_SLUG_PREFIX = "pipeline-"


def schedule_slug(pipeline_id: int) -> str:
    """Each pipeline's schedule is a schedule of the deployment, known by this slug."""
    return f"{SCHEDULE_SLUG_PREFIX}{pipeline_id}"


async def read_pipeline_schedules() -> dict[int, DeploymentSchedule]:
    """Every pipeline's schedule, by pipeline id, as Prefect holds them."""
    async with orchestrator.prefect_client() as client:
        deployment_id = await orchestrator.read_deployment_id(client)
        schedules = await client.read_deployment_schedules(deployment_id)
    return {
        int(schedule.slug.removeprefix(SCHEDULE_SLUG_PREFIX)): schedule
        for schedule in schedules
        if schedule.slug and schedule.slug.removeprefix(SCHEDULE_SLUG_PREFIX).isdigit()
    }


async def set_pipeline_schedule(
    *, pipeline_id: int, record_count: int, schedule: CronSchedule | IntervalSchedule, active: bool
) -> DeploymentSchedule:
    """Create or replace the pipeline's schedule: Prefect's scheduler then creates its runs."""
    parameters = {"pipeline_id": pipeline_id, "record_count": record_count}
    async with orchestrator.prefect_client() as client:
        deployment_id = await orchestrator.read_deployment_id(client)
        existing = await _find_schedule(client, deployment_id, pipeline_id)
        if existing is not None:
            await client.update_deployment_schedule(
                deployment_id, existing.id, active=active, schedule=schedule, parameters=parameters
            )
        else:
            await client.create_deployment_schedules(
                deployment_id,
                [
                    DeploymentScheduleCreate(
                        schedule=schedule,
                        active=active,
                        parameters=parameters,
                        slug=schedule_slug(pipeline_id),
                    )
                ],
            )
        created = await _find_schedule(client, deployment_id, pipeline_id)
    assert created is not None
    return created


async def set_pipeline_schedule_active(pipeline_id: int, active: bool) -> DeploymentSchedule | None:
    """Pause (active False) or resume a pipeline's schedule; None when it has none."""
    async with orchestrator.prefect_client() as client:
        deployment_id = await orchestrator.read_deployment_id(client)
        existing = await _find_schedule(client, deployment_id, pipeline_id)
        if existing is None:
            return None
        await client.update_deployment_schedule(deployment_id, existing.id, active=active)
        return await _find_schedule(client, deployment_id, pipeline_id)


async def delete_pipeline_schedule(pipeline_id: int) -> bool:
    async with orchestrator.prefect_client() as client:
        deployment_id = await orchestrator.read_deployment_id(client)
        existing = await _find_schedule(client, deployment_id, pipeline_id)
        if existing is None:
            return False
        await client.delete_deployment_schedule(deployment_id, existing.id)
        return True


async def _find_schedule(
    client: PrefectClient, deployment_id: UUID, pipeline_id: int
) -> DeploymentSchedule | None:
    schedules = await client.read_deployment_schedules(deployment_id)
    return next((s for s in schedules if s.slug == schedule_slug(pipeline_id)), None)
