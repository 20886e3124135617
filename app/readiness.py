"""Readiness checks shared by GET /ready and `make doctor`: each failed check says how to fix it."""

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.config import PROJECT_ROOT, get_settings
from app.db import get_engine
from app.models import utcnow
from app.pipeline import orchestrator, watchdog
from app.pipeline.pool import PoolHealth, pool_health
from app.shown import shown_database_url, shown_prefect_url


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _migration_head() -> str | None:
    config = Config(str(Path(PROJECT_ROOT) / "alembic.ini"))
    return ScriptDirectory.from_config(config).get_current_head()


DATABASE_CHECK_SECONDS = 5.0  # a database that accepts connections and never answers is down


def _hidden(text: str) -> str:
    """A message that may quote either URL (Prefect's errors name its URL), with them shown."""
    settings = get_settings()
    for url, shown in (
        (settings.database_url, shown_database_url(settings.database_url)),
        (settings.prefect_api_url, shown_prefect_url(settings.prefect_api_url)),
    ):
        text = text.replace(url, shown) if url else text
    return text


async def _database() -> list[Check]:
    url = shown_database_url(get_settings().database_url)
    try:
        async with asyncio.timeout(DATABASE_CHECK_SECONDS), get_engine().connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:
        reason = (
            f"no answer within {DATABASE_CHECK_SECONDS:g} s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {_hidden((str(exc).splitlines() or [''])[0])[:200]}"
        )
        return [
            Check(
                "database",
                False,
                f"{url}: {reason}",
                "check DATABASE_URL and that the database server is running; then run "
                "`make migrate` (alembic upgrade head)",
            )
        ]
    head = _migration_head()
    return [
        Check("database", True, f"{url} reachable"),
        Check(
            "migrations",
            current == head,
            f"at revision {current}, latest is {head}",
            None if current == head else "run `make migrate` (alembic upgrade head)",
        ),
    ]


async def _prefect() -> list[Check]:
    settings = get_settings()
    pool = settings.work_pool_name
    prefect_url = shown_prefect_url(settings.prefect_api_url)
    try:
        health = await pool_health()
    except orchestrator.PrefectRefusedError as exc:  # there, but refusing this client
        return [
            Check(
                "prefect_api",
                False,
                f"{prefect_url} answered {exc.status_code}",
                "if the server requires authentication, set PREFECT_API_AUTH_STRING (or "
                "PREFECT_API_KEY) in every process as the server expects",
            )
        ]
    except orchestrator.PrefectUnavailableError as exc:
        return [
            Check(
                "prefect_api",
                False,
                _hidden(str(exc)),
                f"start the Prefect server and set PREFECT_API_URL (now {prefect_url}) "
                "to its address in every process: API, worker and this one",
            )
        ]
    checks = [
        Check("prefect_api", True, f"{prefect_url} reachable"),
        Check(
            "work_pool",
            health.pool_exists and not health.pool_paused,
            f"pool '{pool}' "
            + ("missing" if not health.pool_exists else "paused" if health.pool_paused else "ready")
            + (
                f", concurrency limit {health.pool_concurrency_limit}"
                if health.pool_concurrency_limit is not None
                else ""
            ),
            None
            if health.pool_exists and not health.pool_paused
            else (
                "run python app/pipeline/deploy.py (creates the pool)"
                if not health.pool_exists
                else f"prefect work-pool resume {pool}"
            ),
        ),
        Check(
            "worker",
            bool(health.live_workers),
            f"{len(health.live_workers)} worker(s) with a recent heartbeat: "
            + (", ".join(health.live_workers) or "none"),
            None
            if health.live_workers
            else f"start a worker: prefect worker start --pool {pool} --type process (with "
            "PREFECT_API_URL set to this server; a worker that cannot connect sends no heartbeat)",
        ),
        _deployment_check(health, settings.deployment_name, pool),
    ]
    return checks


def _deployment_check(health: PoolHealth, name: str, pool: str) -> Check:
    if not health.deployment_exists:
        return Check("deployment", False, f"'{name}' missing", "run python app/pipeline/deploy.py")
    if health.deployment_pool != pool:
        return Check(
            "deployment",
            False,
            f"'{name}' sends its runs to pool '{health.deployment_pool}', not '{pool}' "
            "(WORK_POOL_NAME), whose workers this service watches",
            "run python app/pipeline/deploy.py to move it to this pool, or set "
            f"WORK_POOL_NAME={health.deployment_pool} in every process",
        )
    return Check("deployment", True, f"'{name}' exists, in pool '{pool}'", None)


async def _stranded(live_workers: bool) -> Check:
    runs = await watchdog.unfinished_runs()
    ids = [run.prefect_flow_run_id for run in runs if run.prefect_flow_run_id]
    states = await orchestrator.read_flow_run_states(ids)
    now = utcnow()
    stranded = [
        verdict
        for run in runs
        if (
            verdict := watchdog.judge(
                run,
                states.get(run.prefect_flow_run_id) if run.prefect_flow_run_id else None,
                now=now,
                live_workers=live_workers,
            )
        )
        is not None
    ]
    return Check(
        "stranded_runs",
        not stranded,
        f"{len(stranded)} stranded of {len(runs)} unfinished run(s)"
        + "".join(f"; run {v.run_id}: {v.reason}" for v in stranded[:5]),
        None
        if not stranded
        else "the API's watchdog settles them within a minute; if it "
        "does not, check that the API is running (it hosts the watchdog)",
    )


async def run_checks() -> list[Check]:
    """Every check, in the order a person would fix them."""
    database, prefect = await asyncio.gather(_database(), _prefect())
    checks = [*database, *prefect]
    if all(check.ok for check in checks if check.name in ("database", "prefect_api")):
        live = any(check.ok for check in checks if check.name == "worker")
        checks.append(await _stranded(live))
    return checks


def main() -> None:
    """`make doctor`: print each check with its fix; exit 1 when any fails."""
    checks = asyncio.run(run_checks())
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<14} {check.detail}")
        if check.fix:
            print(f"      {'':<14} fix: {check.fix}")
    raise SystemExit(0 if all(check.ok for check in checks) else 1)


if __name__ == "__main__":
    main()
