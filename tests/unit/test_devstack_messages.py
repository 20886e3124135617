"""What `make doctor` and `make up` tell the user of the stack they named: a state directory
where no stack runs, and a taken port, each with the command that starts it with their own
settings (app/devstack.py, app/stack.py, app/stack_command.py)."""

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.devstack import Stack
from tests.support.postgres import free_port

UNSET = ("DATABASE_URL", "PIPELINE_DATA_DIR", "PREFECT_HOME")  # the state directory's


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.devstack", "doctor", *args],
        cwd=PROJECT_ROOT,
        env={name: value for name, value in os.environ.items() if name not in UNSET},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_doctor_where_no_stack_runs_says_so_first_and_how_to_start_it(tmp_path: Path) -> None:
    """It listed what was missing (a database, Prefect) as if a stack ran with parts missing."""
    state, prefect_port, api_port = tmp_path / "s2", free_port(), free_port()
    doctor = _doctor(
        f"--state-dir={state}", f"--prefect-port={prefect_port}", f"--api-port={api_port}"
    )
    lines = doctor.stdout.splitlines()
    assert (doctor.returncode, doctor.stderr) == (1, "")  # a check failed, as before
    assert lines[0] == (
        f"no stack runs here (STATE_DIR={state}): nothing answers at "
        f"http://127.0.0.1:{api_port} (API) or http://127.0.0.1:{prefect_port}/api (Prefect "
        f"server); start it with `make up STATE_DIR={state} PREFECT_PORT={prefect_port} "
        f"API_PORT={api_port}` (`pipeline up --state-dir {state} --prefect-port {prefect_port} "
        f"--api-port {api_port}`). Its checks:"
    )
    # the checks follow, as they did
    assert lines[1] == (
        f"FAIL  database       sqlite+aiosqlite:///{state / 'pipelines.db'}: file does not exist"
    )
    assert [line[:20] for line in lines[2:] if not line.startswith(" ")] == [
        "ok    data_dir      ",
        "FAIL  prefect_api   ",
    ]
    assert not state.exists()  # the doctor made nothing


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[int]:
    """Something answering HTTP on a port: a server the doctor's checks are sent to."""
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_says_nothing_of_it_when_something_answers_there(
    tmp_path: Path, answering: int
) -> None:
    """A server there (another stack's, docker compose's) is what the checks then ask."""
    doctor = _doctor(
        f"--state-dir={tmp_path}", f"--api-port={answering}", f"--prefect-port={free_port()}"
    )
    assert doctor.stdout.splitlines()[0] == (
        f"FAIL  database       sqlite+aiosqlite:///{tmp_path / 'pipelines.db'}: file does not exist"
    )


def test_a_taken_port_suggests_the_users_own_state_directory_and_other_port(
    tmp_path: Path,
) -> None:
    """It suggested `make up PREFECT_PORT=4301`: that stack, of var/ and API port 8000, was not
    the one asked for."""
    state, api_port = tmp_path / "s2", free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = Stack(
            env={},
            state_dir=state,
            log_dir=state / "log",
            prefect_port=port,
            api_port=api_port,
        )
        with pytest.raises(RuntimeError) as refused:
            stack.start()
    assert str(refused.value) == (
        f"port {port} on 127.0.0.1 is already in use (another Prefect server, a `make up` of "
        "another checkout or state directory, or `docker compose up`?): stop it, or give the "
        f"stack another port: `make up STATE_DIR={state} PREFECT_PORT={port + 1} "
        f"API_PORT={api_port}` (`pipeline up --state-dir {state} --prefect-port {port + 1} "
        f"--api-port {api_port}`)"
    )


def test_the_default_stack_is_suggested_with_only_the_port_that_moves() -> None:
    """Settings left at their defaults are left out, as the user typed them."""
    assert Stack(env={}, log_dir=Stack().state_dir / "log").up_command(prefect_port=4201) == (
        "`make up PREFECT_PORT=4201` (`pipeline up --prefect-port 4201`)"
    )


def test_a_path_with_a_space_is_quoted() -> None:
    stack = Stack(env={}, state_dir=Path("/tmp/my stack"), log_dir=Path("/tmp/my stack/log"))
    assert stack.up_command() == (
        "`make up STATE_DIR='/tmp/my stack'` (`pipeline up --state-dir '/tmp/my stack'`)"
    )
