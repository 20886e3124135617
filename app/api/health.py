"""Liveness (the process answers) and readiness (everything a run needs is there)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.readiness import run_checks

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a check failed; each says how to fix it"}})
async def ready() -> JSONResponse:
    """Database reachable and migrated, Prefect reachable, pool + live worker + deployment, no
    stranded runs. 200 when all pass, else 503 with each failed check's fix."""
    checks = await run_checks()
    ok = all(check.ok for check in checks)
    return JSONResponse(
        status_code=200 if ok else 503,
        content={"ready": ok, "checks": [check.as_dict() for check in checks]},
    )
