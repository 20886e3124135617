"""A setting the stack's processes cannot read is said before `make up` starts any of them, or
`make doctor` checks anything (app/stack/settings_check.py): it failed the first process with
pydantic's traceback, and a DATABASE_URL that is not one failed the stack's lock with
SQLAlchemy's."""

import contextlib
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import ENV_FILE, PROJECT_ROOT, Settings
from app.stack.settings_check import problems, refusal
from tests.support.postgres import free_port

FORMS = "write sqlite:///path/to/pipelines.db or postgresql://user:password@host:5432/database"
NOT_AN_INTEGER = "input should be a valid integer, unable to parse string as an integer"
FIX = f"in the environment or in {ENV_FILE} (the README's Configuration lists each setting)"
PREFECT_FIX = (
    f"in the environment or in {ENV_FILE} (the README's Configuration lists each setting; "
    "Prefect's: https://docs.prefect.io/v3/api-ref/settings-ref)"
)
NOT_A_NUMBER = "input should be a valid number, unable to parse string as a number"


def test_each_refused_setting_is_named_with_its_value_and_what_is_wrong() -> None:
    env = {"PIPELINE_MAX_UPLOAD_BYTES": "abc", "pipeline_max_input_columns": "0"}
    assert problems(env) == [
        f"PIPELINE_MAX_UPLOAD_BYTES='abc': {NOT_AN_INTEGER}",
        "PIPELINE_MAX_INPUT_COLUMNS='0': input should be greater than or equal to 7",
    ]


def test_a_database_url_is_named_without_its_value_which_may_hold_a_password() -> None:
    assert problems({"DATABASE_URL": "postgres:secret@db/x"}) == [
        f"DATABASE_URL: not a database URL; {FORMS}"
    ]
    assert problems({"DATABASE_URL": "postgresql://app:secret@db:notaport/x"}) == [
        f"DATABASE_URL: not a database URL; {FORMS}"
    ]
    assert problems({"DATABASE_URL": "mysql://app:secret@db/x"}) == [
        f"DATABASE_URL: a mysql database is not supported; {FORMS}"
    ]


def test_a_check_of_several_settings_says_its_message_and_no_value_given() -> None:
    """Its error has no one setting's name, and as input every setting given: API keys and the
    database's password were printed to the terminal."""
    env = {
        "DATABASE_URL": "postgresql://pipeline:s3cretpw@db:5432/x",
        "API_KEYS": "topsecretkey1",
        "PIPELINE_HEARTBEAT_SECONDS": "5",
        "PIPELINE_STALE_HEARTBEAT_SECONDS": "5",
    }
    assert problems(env) == [
        "PIPELINE_STALE_HEARTBEAT_SECONDS (5) must be at least twice PIPELINE_HEARTBEAT_SECONDS "
        "(5), or the watchdog fails healthy runs between two heartbeats"
    ]


def test_usable_settings_and_an_empty_environment_have_no_problem() -> None:
    assert problems({}) == []
    assert refusal({"DATABASE_URL": "postgresql://app@db:5432/x", "PIPELINE_TASK_TAGS": ""}) is None


def test_the_service_itself_refuses_a_database_url_that_is_not_one() -> None:
    """Every process reads Settings: the API and flow runs say the same, not SQLAlchemy's
    ArgumentError at the first connection."""
    with pytest.raises(ValidationError, match="not a database URL; write sqlite:///"):
        Settings(database_url="nonsense")


def test_the_refusal_says_one_setting_or_several() -> None:
    assert refusal({"PIPELINE_MAX_UPLOAD_BYTES": "abc"}) == (
        "a setting the stack's processes read cannot be used:\n"
        f"  PIPELINE_MAX_UPLOAD_BYTES='abc': {NOT_AN_INTEGER}\n"
        f"set it right {FIX}"
    )
    assert refusal({"PIPELINE_MAX_UPLOAD_BYTES": "abc", "DATABASE_URL": "x"}) == (
        "settings the stack's processes read cannot be used:\n"
        f"  DATABASE_URL: not a database URL; {FORMS}\n"
        f"  PIPELINE_MAX_UPLOAD_BYTES='abc': {NOT_AN_INTEGER}\n"
        f"set them right {FIX}"
    )


def test_prefects_own_settings_are_named_by_their_variable_with_the_value_given() -> None:
    """Prefect's server failed with a traceback naming `ServerDatabaseSettings` and `timeout`;
    its settings stop at the first refused one: each is found."""
    env = {
        "PREFECT_WORKER_QUERY_SECONDS": "1s",
        "PREFECT_LOGGING_LEVEL": "verbose",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "maybe",
    }
    assert problems(env) == [
        "PREFECT_LOGGING_LEVEL='verbose': input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' "
        "or 'CRITICAL'",
        "PREFECT_SERVER_ANALYTICS_ENABLED='maybe': input should be a valid boolean, unable to "
        "interpret input",
        f"PREFECT_WORKER_QUERY_SECONDS='1s': {NOT_A_NUMBER}",
    ]


def test_a_prefect_setting_under_its_older_name_is_named_as_given() -> None:
    assert problems({"PREFECT_API_DATABASE_TIMEOUT": "soon"}) == [
        f"PREFECT_API_DATABASE_TIMEOUT='soon': {NOT_A_NUMBER}"
    ]
    assert problems(
        {"PREFECT_API_DATABASE_TIMEOUT": "soon", "PREFECT_SERVER_DATABASE_TIMEOUT": "later"}
    ) == [
        f"PREFECT_SERVER_DATABASE_TIMEOUT='later': {NOT_A_NUMBER}",
        f"PREFECT_API_DATABASE_TIMEOUT='soon': {NOT_A_NUMBER}",
    ]


def test_a_prefect_setting_refused_in_its_profile_says_where(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        'active = "default"\n[profiles.default]\nPREFECT_WORKER_QUERY_SECONDS = "often"\n'
    )
    assert problems({"PREFECT_HOME": str(tmp_path), "PIPELINE_MAX_UPLOAD_BYTES": "abc"}) == [
        f"PIPELINE_MAX_UPLOAD_BYTES='abc': {NOT_AN_INTEGER}",
        "PREFECT_WORKER_QUERY_SECONDS (in Prefect's profile or prefect.toml, not the "
        f"environment)='often': {NOT_A_NUMBER}",
    ]


def test_a_prefect_profiles_file_that_is_not_toml_is_said(tmp_path: Path) -> None:
    """Prefect's settings warn and go on without it; `prefect server start`, the worker and every
    flow run stopped on it (tomllib.TOMLDecodeError)."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "default"\n[profiles.default\n')
    assert problems({"PREFECT_HOME": str(tmp_path)}) == [
        f"Prefect's profiles file {profiles} is not valid TOML (Expected ']' at the end of a "
        "table declaration (at line 2, column 18)): fix it or remove it; every Prefect process "
        "stops on it"
    ]


def test_the_check_of_prefects_settings_leaves_this_process_environment_as_it_was() -> None:
    before = dict(os.environ)
    assert problems({"PREFECT_LOGGING_LEVEL": "verbose"}) != []
    assert dict(os.environ) == before


def test_a_refusal_of_a_prefect_setting_points_to_prefects_reference() -> None:
    assert refusal({"PREFECT_WORKER_QUERY_SECONDS": "1s"}) == (
        "a setting the stack's processes read cannot be used:\n"
        f"  PREFECT_WORKER_QUERY_SECONDS='1s': {NOT_A_NUMBER}\n"
        f"set it right {PREFECT_FIX}"
    )


BAD_SETTINGS = {
    "ours": ("PIPELINE_MAX_UPLOAD_BYTES", "abc", NOT_AN_INTEGER, FIX),
    "Prefect's": ("PREFECT_WORKER_QUERY_SECONDS", "1s", NOT_A_NUMBER, PREFECT_FIX),
}


@pytest.mark.parametrize("whose", BAD_SETTINGS)
@pytest.mark.parametrize(("command", "exit_code"), [("up", 8), ("doctor", 1)])
def test_make_up_and_doctor_refuse_a_bad_setting_before_anything_starts(
    tmp_path: Path, command: str, exit_code: int, whose: str
) -> None:
    """A bad Prefect setting started the stack: the Prefect server failed, its traceback in its
    log, and make up said only "prefect-server exited with 1"."""
    name, value, what, fix = BAD_SETTINGS[whose]
    state = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PIPELINE_DATA_DIR")},
        name: value,
    }
    ports = [f"--prefect-port={free_port()}", f"--api-port={free_port()}"]
    done = subprocess.run(
        [sys.executable, "-m", "app.stack.commands", command, f"--state-dir={state}", *ports],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (exit_code, "")
    assert done.stderr == (
        "error: a setting the stack's processes read cannot be used:\n"
        f"  {name}='{value}': {what}\n"
        f"set it right {fix}\n"
    )
    assert not state.exists()  # nothing made: no log directory, no database, no lock


def test_make_migrate_refuses_a_bad_setting_before_alembic_starts(tmp_path: Path) -> None:
    """It printed alembic's 56-line traceback, pydantic's error at its end."""
    state = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PIPELINE_DATA_DIR")},
        "PIPELINE_MAX_UPLOAD_BYTES": "2GB",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.stack.migrate", f"--state-dir={state}"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: a setting the stack's processes read cannot be used:\n"
        f"  PIPELINE_MAX_UPLOAD_BYTES='2GB': {NOT_AN_INTEGER}\n"
        f"set it right {FIX}\n"
    )
    assert not state.exists()


def test_the_check_in_a_terminal_says_nothing_of_prefects_telemetry_and_sends_nothing(
    tmp_path: Path,
) -> None:
    """`make up` in a terminal imports Prefect to check its settings: Prefect then printed its
    telemetry notice, wrote a device id under PREFECT_HOME and sent an "SDK imported" event."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PREFECT_HOME": str(home)}
    code = "from app.stack.settings_check import problems; print(problems({}))"
    pid, terminal = pty.fork()
    if pid == 0:  # the child, in a terminal of its own
        os.chdir(PROJECT_ROOT)
        os.execve(sys.executable, [sys.executable, "-c", code], env)
    shown = bytearray()
    with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
        while chunk := os.read(terminal, 4096):
            shown += chunk
    _, status = os.waitpid(pid, 0)
    assert (os.waitstatus_to_exitcode(status), shown.decode()) == (0, "[]\r\n")
    assert list(home.iterdir()) == []
