"""Readiness checks shared by GET /ready and `make doctor`: each failed check says how to fix it."""

import asyncio

from app.pipeline.prefect_budget import as_a_request
from app.readiness.check import Check
from app.readiness.orchestration import prefect_checks, stranded_check
from app.readiness.storage import data_dir_check, database_checks

__all__ = ["Check", "main", "run_checks"]


async def run_checks() -> list[Check]:
    """Every check, in the order a person would fix them."""
    database, data_dir, (prefect, health) = await asyncio.gather(
        database_checks(), data_dir_check(), prefect_checks()
    )
    checks = [*database, data_dir, *prefect]
    if health is not None and all(check.ok for check in database if check.name == "database"):
        checks.append(await stranded_check(health))
    return checks


def main() -> None:
    """`make doctor`: print each check with its fix; exit 1 when any fails."""
    with as_a_request():  # Prefect hung: its checks fail within the budget, as GET /ready's
        checks = asyncio.run(run_checks())
    for check in checks:
        mark = "FAIL" if not check.ok else "warn" if check.warning else "ok  "
        print(f"{mark}  {check.name:<14} {check.detail}")
        if check.fix:
            print(f"      {'':<14} fix: {check.fix}")
    raise SystemExit(0 if all(check.ok for check in checks) else 1)
