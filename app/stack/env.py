"""The environment every process of the local stack (commands.py) is given: its own Prefect
server, that server's tuning, and the defaults of what the stack keeps on disk — each default only
where neither the environment nor the project's .env sets the variable, as for every setting."""

from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values  # the parser pydantic-settings reads .env with

from app.config import Settings

# The Prefect server's settings for bursts of runs (docker-compose.yml sets the same):
# - its task-run recorder writes each task-run event in a transaction of its own by default
#   (batch size 1): ~22% of the server's CPU per flow run. Batches of up to 50, flushed every
#   second, cut the server's CPU per run by a quarter; task runs show up within ~1 s;
# - its PostgreSQL pool keeps 5 connections by default: under a burst its services and requests
#   hold more, and each one past 5 was opened and closed again — a new backend, every statement
#   prepared afresh. With 20 kept, a 100-run burst used 0.94 → 0.74 CPU-s per run on the
#   machine (PostgreSQL 0.13 → 0.05, the server 0.32 → 0.25). SQLite ignores it.
SERVER_TUNING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
}

LOG_DATES = "%Y-%m-%d %H:%M:%S"  # Prefect's own: %H:%M:%S

# the file Settings reads: the project's .env, wherever a process runs
ENV_FILE = Path(str(Settings.model_config.get("env_file")))


def stack_defaults(state_dir: Path, prefect_api_url: str) -> dict[tuple[str, ...], str]:
    """What the stack gives its processes unless configured: by the variable's names (a
    setting's aliases), its value."""
    return {
        ("DATABASE_URL",): f"sqlite+aiosqlite:///{state_dir / 'pipelines.db'}",
        ("PIPELINE_DATA_DIR", "DATA_DIR"): str(state_dir / "data"),
        ("PREFECT_HOME",): str(state_dir / "prefect"),
        ("PREFECT_UI_API_URL",): prefect_api_url,
        ("PREFECT_WORKER_QUERY_SECONDS",): "1",  # Prefect's 10 s: a run would wait for the poll
        # the log files are appended to across starts and days: Prefect's lines had no date
        ("PREFECT_LOGGING_FORMATTERS_STANDARD_DATEFMT",): LOG_DATES,
    }


def process_env(
    env: Mapping[str, str],
    *,
    prefect_api_url: str,
    state_dir: Path,
    tmp_dir: Path,
    env_file: Path = ENV_FILE,
) -> dict[str, str]:
    """`env` with the stack's Prefect server, its tuning, its temporary directory and its
    defaults. A default gives way to the variable set in `env` or else in `env_file`, empty
    meaning unset as for Settings: the value from the file is passed on as it is (Settings and
    Prefect read the file too, but a variable in the environment wins over it). TMPDIR is always
    the stack's own: only what is in it is certainly the stack's to remove."""
    from_file = {name: value for name, value in dotenv_values(env_file).items() if value}
    given = {name.upper() for name, value in env.items() if value}
    result = {**SERVER_TUNING, **env}
    for names, default in stack_defaults(state_dir, prefect_api_url).items():
        if given.isdisjoint(names):
            for name in names:
                result.pop(name, None)  # empty: unset
            in_file = {name: value for name, value in from_file.items() if name.upper() in names}
            result.update(in_file or {names[0]: default})
        _under_its_first_name(result, names)
    result.update(
        PREFECT_API_URL=prefect_api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_ENABLED="false",
        PYTHONUNBUFFERED="1",
        TMPDIR=str(tmp_dir),
    )
    return result


def _under_its_first_name(env: dict[str, str], names: tuple[str, ...]) -> None:
    """A setting given under another of its names (DATA_DIR) passed on under its first, with the
    value Settings would take (the first name set wins): the stack reads it too (its locks)."""
    given = [(name, env[key]) for name in names for key in env if key.upper() == name]
    values = [value for _, value in given if value]
    for key in [key for key in env if key.upper() in names]:
        del env[key]
    if values:
        env[names[0]] = values[0]
