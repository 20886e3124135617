"""Liveness (the process answers, open to all: container health checks call it) and readiness
(everything a run needs is there; a read, under API_KEYS_FOR_READS as the others are)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.auth import ReadAccess
from app.api.schemas import errors
from app.readiness import run_checks

router = APIRouter(tags=["health"])


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    warning: bool = False  # ok for now, soon not (little free space): the fix says what to do


class ReadyOut(BaseModel):
    """Readiness: every check, each failed one with its fix (the body of the 503 too)."""

    ready: bool
    checks: list[CheckOut]


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadyOut,
    dependencies=[ReadAccess],
    responses={
        **errors(401, 403),
        503: {"model": ReadyOut, "description": "a check failed; each says how to fix it"},
    },
)
async def ready() -> JSONResponse:
    """Database reachable and migrated, Prefect reachable, pool + live worker + deployment, no
    stranded runs. 200 when all pass, else 503 with each failed check's fix."""
    checks = await run_checks()
    ok = all(check.ok for check in checks)
    return JSONResponse(
        status_code=200 if ok else 503,
        content={"ready": ok, "checks": [check.as_dict() for check in checks]},
    )
