"""The checks of Prefect's side: its API, the work pool, a live worker, the deployment, and no
run stranded where no worker will take it. A fix is a command to run from the project's directory
as it is written, on this server (PREFECT_API_URL): Prefect's CLI, without it, starts a throwaway
server of its own and acts on that."""

import shlex

from app.config import get_settings
from app.models import utcnow
from app.pipeline import orchestrator
from app.pipeline.clocks import Clocks
from app.pipeline.pool import NotPrefectAPIError, PoolHealth, pool_health
from app.pipeline.reconcile import watchdog
from app.readiness.check import Check, hidden
from app.shown import shown_prefect_url


def on_this_server(command: str) -> str:
    """`command` with PREFECT_API_URL set to this process's Prefect server."""
    return f"PREFECT_API_URL={shlex.quote(shown_prefect_url(get_settings().prefect_api_url))} {command}"


DEPLOY = ".venv/bin/python app/pipeline/deploy.py"


async def prefect_checks() -> tuple[list[Check], PoolHealth | None]:
    """The checks, and what Prefect said (None when it could not be asked)."""
    settings = get_settings()
    pool = settings.work_pool_name
    prefect_url = shown_prefect_url(settings.prefect_api_url)
    try:
        health = await pool_health()
    except NotPrefectAPIError as exc:  # something answers there, but not Prefect's API
        return [Check("prefect_api", False, exc.detail, exc.fix)], None
    except orchestrator.PrefectRefusedError as exc:  # there, but refusing this client
        return [
            Check(
                "prefect_api",
                False,
                f"{prefect_url} answered {exc.status_code}",
                "if the server requires authentication, set PREFECT_API_AUTH_STRING (or "
                "PREFECT_API_KEY) in every process as the server expects",
            )
        ], None
    except orchestrator.PrefectUnavailableError as exc:
        return [
            Check(
                "prefect_api",
                False,
                hidden(str(exc)),
                f"start the Prefect server and set PREFECT_API_URL (now {prefect_url}) "
                "to its address in every process: API, worker and this one",
            )
        ], None
    checks = [
        Check("prefect_api", True, f"{prefect_url} reachable"),
        work_pool_check(health, pool),
        Check(
            "worker",
            bool(health.live_workers),
            f"{len(health.live_workers)} worker(s) with a recent heartbeat: "
            + (", ".join(health.live_workers) or "none"),
            None
            if health.live_workers
            else "start a worker: "
            + on_this_server(
                f".venv/bin/python -m app.pipeline.worker --pool {pool} --type process"
            )
            + " (as `make up` does)",
        ),
        deployment_check(health, settings.deployment_name, pool),
    ]
    return checks, health


def work_pool_check(health: PoolHealth, pool: str) -> Check:
    """The pool is there and lets runs start: not paused, its concurrency limit not 0."""
    if not health.pool_exists:
        return Check(
            "work_pool",
            False,
            f"pool '{pool}' missing",
            f"run {on_this_server(DEPLOY)} (creates the pool)",
        )
    limit = health.pool_concurrency_limit
    shown_limit = "" if limit is None else f", concurrency limit {limit}"
    prefect = on_this_server(".venv/bin/prefect")
    fixes = [f"{prefect} work-pool resume {pool}"] if health.pool_paused else []
    if limit == 0:  # Prefect starts no run at all: every one waits
        fixes.append(
            f"{prefect} work-pool clear-concurrency-limit {pool} (no limit), or {prefect} "
            f"work-pool set-concurrency-limit {pool} N (N runs at once)"
        )
    state = "paused" if health.pool_paused else "starts no runs" if limit == 0 else "ready"
    return Check(
        "work_pool", not fixes, f"pool '{pool}' {state}{shown_limit}", "; and ".join(fixes) or None
    )


def deployment_check(health: PoolHealth, name: str, pool: str) -> Check:
    if not health.deployment_exists:
        return Check("deployment", False, f"'{name}' missing", f"run {on_this_server(DEPLOY)}")
    if health.deployment_pool != pool:
        return Check(
            "deployment",
            False,
            f"'{name}' sends its runs to pool '{health.deployment_pool}', not '{pool}' "
            "(WORK_POOL_NAME), whose workers this service watches",
            f"run {on_this_server(DEPLOY)} to move it to this pool, or set "
            f"WORK_POOL_NAME={health.deployment_pool} in every process",
        )
    return Check("deployment", True, f"'{name}' exists, in pool '{pool}'", None)


async def stranded_check(health: PoolHealth) -> Check:
    """Runs the watchdog would settle: judged as it judges them, with the pool as `health` saw
    it (whether a run can start, the Prefect server's clock)."""
    runs, database = await watchdog.unfinished_runs_read_at()
    ids = [run.prefect_flow_run_id for run in runs if run.prefect_flow_run_id]
    states = await orchestrator.read_flow_run_states(ids)
    api = utcnow()
    now = Clocks(api=api, database=database, prefect=api + health.prefect_clock_offset)
    stranded = [
        verdict
        for run in runs
        if (
            verdict := watchdog.judge(
                run,
                states.get(run.prefect_flow_run_id) if run.prefect_flow_run_id else None,
                now=now,
                live_workers=health.takes_runs,
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
