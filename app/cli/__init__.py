"""`pipeline`: the service's command line (typer + rich), a client of its HTTP API."""

import sys

from app.cli import create, download, runs, schedules, service
from app.cli.base import app, stderr, write_anything
from app.cli.client import ExitCode

__all__ = ["app", "create", "download", "main", "runs", "schedules", "service"]


# `pipeline`'s own options, which click takes only before the command
GLOBAL_OPTIONS = ("--api-url", "--api-key")


def global_options_first(args: list[str]) -> list[str]:
    """`pipeline list --api-url URL` as `pipeline --api-url URL list`: written after the command,
    as people write them, they were "No such option: --api-url". Up to a `--`."""
    moved: list[str] = []
    rest: list[str] = []
    items = iter(args)
    for arg in items:
        if arg == "--":
            rest += [arg, *items]
        elif arg in GLOBAL_OPTIONS:
            moved += [arg, *[value for value in [next(items, None)] if value is not None]]
        elif arg.startswith(tuple(f"{option}=" for option in GLOBAL_OPTIONS)):
            moved.append(arg)
        else:
            rest.append(arg)
    return moved + rest


def main() -> None:
    """The console script `pipeline`."""
    write_anything()
    try:
        app(args=global_options_first(sys.argv[1:]))
    except Exception as exc:  # a bug of ours: one line, never a traceback
        stderr().print(
            f"error: unexpected {type(exc).__name__}: {exc}", soft_wrap=True, markup=False
        )
        raise SystemExit(ExitCode.BUG) from None
