"""The command that starts a local stack with the user's own settings, as `make up`'s variables
and as `pipeline up`'s options: what a message suggests repeats the state directory and ports
the user gave, so that following it starts the stack they meant."""

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
    log_dir: Path | None = None,
) -> list[Setting]:
    """The settings given (None: the default, left out), in the order make's help names them."""
    given = [
        ("STATE_DIR", "--state-dir", state_dir),
        ("PREFECT_PORT", "--prefect-port", prefect_port),
        ("API_PORT", "--api-port", api_port),
        (None, "--log-dir", log_dir),  # `pipeline up` only: make has no variable for it
    ]
    return [
        Setting(variable, option, shlex.quote(str(value)))
        for variable, option, value in given
        if value is not None
    ]


def up_command(settings: list[Setting]) -> str:
    """`make up …` (`pipeline up …`) with these settings, quoted as a message shows commands."""
    make = ["make up", *(f"{s.variable}={s.value}" for s in settings if s.variable)]
    pipeline = ["pipeline up", *(f"{s.option} {s.value}" for s in settings)]
    return f"`{' '.join(make)}` (`{' '.join(pipeline)}`)"
