"""What `make up` gives its processes (app/stack/env.py): its defaults give way to a variable set in
the environment or, else, in the project's .env, as every setting does."""

import os
import re
import subprocess
import sys
from pathlib import Path

from app.config import PROJECT_ROOT
from app.stack import locks
from app.stack.topology import Stack

URL = "http://127.0.0.1:4321/api"


def _env(tmp_path: Path, env: dict[str, str], dotenv: str) -> dict[str, str]:
    (tmp_path / ".env").write_text(dotenv)
    stack = Stack(
        env=env, prefect_port=4321, state_dir=tmp_path / "state", env_file=tmp_path / ".env"
    )
    return stack.process_env()


def _picked(env: dict[str, str], *names: str) -> dict[str, str | None]:
    return {name: env.get(name) for name in names}


PREFECT_THREE = ("PREFECT_UI_API_URL", "PREFECT_WORKER_QUERY_SECONDS", "PREFECT_HOME")


def test_the_three_prefect_settings_come_from_dotenv(tmp_path: Path) -> None:
    """Measured: `.env` PREFECT_WORKER_QUERY_SECONDS=7, and the worker got 1."""
    env = _env(
        tmp_path,
        {"PATH": "/bin"},
        "PREFECT_WORKER_QUERY_SECONDS=7\nPREFECT_HOME=/srv/prefect\n"
        "PREFECT_UI_API_URL=http://pipelines.example.com:4200/api\n",
    )
    assert _picked(env, *PREFECT_THREE) == {
        "PREFECT_UI_API_URL": "http://pipelines.example.com:4200/api",
        "PREFECT_WORKER_QUERY_SECONDS": "7",
        "PREFECT_HOME": "/srv/prefect",
    }


def test_the_environment_wins_over_dotenv_and_empty_means_unset(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        {"PREFECT_WORKER_QUERY_SECONDS": "3", "PREFECT_HOME": "", "PREFECT_UI_API_URL": ""},
        "PREFECT_WORKER_QUERY_SECONDS=7\nPREFECT_HOME=/srv/prefect\nPREFECT_UI_API_URL=\n",
    )
    assert _picked(env, *PREFECT_THREE) == {
        "PREFECT_UI_API_URL": URL,  # empty in both: the stack's own server
        "PREFECT_WORKER_QUERY_SECONDS": "3",
        "PREFECT_HOME": "/srv/prefect",
    }


# a line as the stack's processes log theirs: through Prefect's logging configuration
LOGS_A_LINE = (
    "import logging\n"
    "from prefect.logging.configuration import setup_logging\n"
    "setup_logging()\n"
    "logging.getLogger('app.stack').warning('a line')\n"
)


def test_without_either_the_stack_keeps_its_state_under_its_state_directory(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    env = _env(tmp_path, {"PATH": "/bin"}, "")
    assert _picked(
        env, "DATABASE_URL", "PIPELINE_DATA_DIR", "DATA_DIR", "PREFECT_API_URL", *PREFECT_THREE
    ) == {
        "DATABASE_URL": f"sqlite+aiosqlite:///{state / 'pipelines.db'}",
        "PIPELINE_DATA_DIR": str(state / "data"),
        "DATA_DIR": None,
        "PREFECT_API_URL": URL,
        "PREFECT_UI_API_URL": URL,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_HOME": str(state / "prefect"),
    }
    assert (env["PREFECT_SERVER_EPHEMERAL_ENABLED"], env["PATH"]) == ("false", "/bin")
    # a stack's process logs with the date: its log files run on across starts and days
    (state / "prefect").mkdir(parents=True)  # as the stack's Prefect server makes it
    logged = subprocess.run(
        [sys.executable, "-c", LOGS_A_LINE],
        cwd=PROJECT_ROOT,
        env={**env, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| WARNING \| app\.stack - a line\n", logged.stderr
    ), logged.stderr


def test_a_configured_database_or_data_directory_is_kept_under_any_of_its_names(
    tmp_path: Path,
) -> None:
    """DATA_DIR is PIPELINE_DATA_DIR's other name: a default under the first would win over it.
    The processes get it under its first name, as the stack itself reads it."""
    env = _env(
        tmp_path,
        {"DATABASE_URL": "postgresql://pipeline@db/pipelines"},
        "DATA_DIR=/srv/data\nPREFECT_API_URL=http://elsewhere:4200/api\n",
    )
    assert _picked(env, "DATABASE_URL", "PIPELINE_DATA_DIR", "DATA_DIR", "PREFECT_API_URL") == {
        "DATABASE_URL": "postgresql://pipeline@db/pipelines",
        "PIPELINE_DATA_DIR": "/srv/data",
        "DATA_DIR": None,
        "PREFECT_API_URL": URL,  # the stack's own server, always
    }


def test_a_data_directory_under_its_other_name_is_the_one_the_stack_locks(
    tmp_path: Path,
) -> None:
    """`DATA_DIR=… make up` (the README's other name) ended in a KeyError traceback: the stack's
    lock looked only under PIPELINE_DATA_DIR. Given both, the first name wins, as in Settings."""
    env = _env(tmp_path, {"DATA_DIR": str(tmp_path / "d")}, "")
    assert locks.shared_paths(env) == {
        "PIPELINE_DATA_DIR": tmp_path / "d" / locks.LOCK_NAME,
        "DATABASE_URL": tmp_path / "state" / f"pipelines.db{locks.LOCK_NAME}",
    }
    both = _env(tmp_path, {"DATA_DIR": "/second", "PIPELINE_DATA_DIR": "/first"}, "")
    assert _picked(both, "PIPELINE_DATA_DIR", "DATA_DIR") == {
        "PIPELINE_DATA_DIR": "/first",
        "DATA_DIR": None,
    }


def test_a_stack_process_reads_the_dotenv_value(tmp_path: Path) -> None:
    """What Prefect itself makes of the environment a worker of the stack is given."""
    env = _env(tmp_path, {"PATH": "/bin"}, "PREFECT_WORKER_QUERY_SECONDS=7\n")
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "from prefect.settings import get_current_settings as s; "
            "print(s().worker.query_seconds, s().home)",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert read.stdout == f"7.0 {tmp_path / 'state' / 'prefect'}\n"
