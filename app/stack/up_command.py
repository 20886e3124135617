"""The command that starts a local stack with the user's own settings, as `make up`'s variables
and as `pipeline up`'s options: what a message suggests repeats the state directory, ports and
workers the user gave, so that following it starts the stack they meant."""

import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    """One setting of a stack: make's variable for it (None: make has none), and the option."""

    variable: str | None
    option: str
    value: str


def stack_settings(
    *,
    state_dir: Path | None = None,
    prefect_port: int | None = None,
    api_port: int | None = None,
    workers: int | None = None,
    worker_limit: int | None = None,
    log_dir: Path | None = None,
) -> list[Setting]:
    """The settings given (None: the default, left out), in the order make's help names them,
    then `pipeline up`'s own (make has no variable for them)."""
    given = [
        ("STATE_DIR", "--state-dir", state_dir),
        ("PREFECT_PORT", "--prefect-port", prefect_port),
        ("API_PORT", "--api-port", api_port),
        (None, "--workers", workers),
        (None, "--worker-limit", worker_limit),
        (None, "--log-dir", log_dir),
    ]
    return [
        Setting(variable, option, shlex.quote(str(value)))
        for variable, option, value in given
        if value is not None
    ]


def up_command(settings: list[Setting]) -> str:
    """`make up …` (`pipeline up …`) with these settings, quoted as a message shows commands;
    `pipeline up …` alone when make cannot carry one of them (its form would drop it)."""
    pipeline = " ".join(["pipeline up", *(f"{s.option} {s.value}" for s in settings)])
    if not_make := [s.option for s in settings if s.variable is None]:
        return f"`{pipeline}` (`make up` has no variable for {' or '.join(not_make)})"
    make = " ".join(["make up", *(f"{s.variable}={s.value}" for s in settings)])
    return f"`{make}` (`{pipeline}`)"
