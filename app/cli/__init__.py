"""`pipeline`: the service's command line (typer + rich), a client of its HTTP API."""

from app.cli import create, download, runs, schedules, service
from app.cli.base import app, stderr, write_anything
from app.cli.client import ExitCode

__all__ = ["app", "create", "download", "main", "runs", "schedules", "service"]


def main() -> None:
    """The console script `pipeline`."""
    write_anything()
    try:
        app()
    except Exception as exc:  # a bug of ours: one line, never a traceback
        stderr().print(
            f"error: unexpected {type(exc).__name__}: {exc}", soft_wrap=True, markup=False
        )
        raise SystemExit(ExitCode.BUG) from None
