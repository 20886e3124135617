"""What `make doctor` and `make up` tell the user of the stack they named: a state directory
where no stack runs, and a taken port, each with the command that starts it with their own
settings (app/stack/commands.py, app/stack/topology.py, app/stack/up_command.py)."""

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.config import PROJECT_ROOT
from app.stack.commands import banner, say_none_runs
from app.stack.topology import Stack
from tests.support.postgres import free_port

UNSET = ("DATABASE_URL", "PIPELINE_DATA_DIR", "PREFECT_HOME")  # the state directory's


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.stack.commands", "doctor", *args],
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
def answering() -> Iterator[Callable[[], int]]:
    """Something answering HTTP on a port (each call one more): a server the doctor's checks
    are sent to."""
    servers: list[HTTPServer] = []

    def serve() -> int:
        server = HTTPServer(("127.0.0.1", 0), _Health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_port

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_doctor_says_what_answers_is_not_the_named_stack(
    tmp_path: Path, answering: Callable[[], int]
) -> None:
    """`make doctor STATE_DIR=x` beside another stack on its ports said nothing of it: its
    Prefect checks passed against that other stack's server."""
    state, api_port, prefect_port = tmp_path / "s2", answering(), answering()
    doctor = _doctor(
        f"--state-dir={state}", f"--api-port={api_port}", f"--prefect-port={prefect_port}"
    )
    assert doctor.stdout.splitlines()[:2] == [
        f"no stack of STATE_DIR={state} runs (its ledger in {state / 'log'} names none "
        f"running), yet something answers at http://127.0.0.1:{api_port} (API) and "
        f"http://127.0.0.1:{prefect_port}/api (Prefect server): another stack, `docker compose "
        "up` or another program, not this state directory's; the Prefect checks below ask that "
        f"server, not this stack's. Start this one on other ports with `make up STATE_DIR={state}"
        f" PREFECT_PORT={prefect_port + 1} API_PORT={api_port + 1}` (`pipeline up --state-dir "
        f"{state} --prefect-port {prefect_port + 1} --api-port {api_port + 1}`). Its checks:",
        f"FAIL  database       sqlite+aiosqlite:///{state / 'pipelines.db'}: file does not exist",
    ]
    assert not state.exists()  # the doctor made nothing


def test_doctor_names_an_api_alone_answering_and_moves_only_its_port(
    tmp_path: Path, answering: Callable[[], int]
) -> None:
    api_port, prefect_port = answering(), free_port()
    doctor = _doctor(
        f"--state-dir={tmp_path}", f"--api-port={api_port}", f"--prefect-port={prefect_port}"
    )
    assert doctor.stdout.splitlines()[0] == (
        f"no stack of STATE_DIR={tmp_path} runs (its ledger in {tmp_path / 'log'} names none "
        f"running), yet something answers at http://127.0.0.1:{api_port} (API): another stack, "
        "`docker compose up` or another program, not this state directory's. Start this one on "
        f"other ports with `make up STATE_DIR={tmp_path} PREFECT_PORT={prefect_port} "
        f"API_PORT={api_port + 1}` (`pipeline up --state-dir {tmp_path} --prefect-port "
        f"{prefect_port} --api-port {api_port + 1}`). Its checks:"
    )


def test_doctor_of_the_environment_says_nothing_of_what_answers(
    answering: Callable[[], int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Named neither state directory nor port, it checks what the environment configures (a
    `docker compose up`, a remote Prefect): that is no other stack's."""
    stack = Stack(env={}, api_port=answering(), log_dir=Stack().state_dir / "log")
    say_none_runs(stack, f"http://127.0.0.1:{answering()}/api", named=False)
    assert capsys.readouterr() == ("", "")


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


def test_a_taken_port_keeps_the_workers_which_only_pipeline_up_can_carry(tmp_path: Path) -> None:
    """`pipeline up --workers 3` was told `pipeline up --api-port 8001`, its workers dropped;
    make has no variable for them, so its form is not offered."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = Stack(
            env={},
            state_dir=tmp_path,
            log_dir=tmp_path / "log",
            prefect_port=free_port(),
            api_port=port,
            workers=3,
            worker_limit=2,
        )
        with pytest.raises(RuntimeError) as refused:
            stack.start()
    assert str(refused.value) == (
        f"port {port} on 127.0.0.1 is already in use (another API, a `make up` of another "
        "checkout or state directory, or `docker compose up`?): stop it, or give the stack "
        f"another port: `pipeline up --state-dir {tmp_path} --prefect-port {stack.prefect_port} "
        f"--api-port {port + 1} --workers 3 --worker-limit 2` (`make up` has no variable for "
        "--workers or --worker-limit)"
    )


@pytest.mark.parametrize(
    ("settings", "command"),
    [
        ({"workers": 3}, "`pipeline up --api-port 8001 --workers 3` (`make up` has no variable for --workers)"),
        ({"worker_limit": 1}, "`pipeline up --api-port 8001 --worker-limit 1` (`make up` has no variable for --worker-limit)"),
        ({"log_dir": Path("/tmp/logs")}, "`pipeline up --api-port 8001 --log-dir /tmp/logs` (`make up` has no variable for --log-dir)"),
        ({"workers": 1, "worker_limit": 4}, "`make up API_PORT=8001` (`pipeline up --api-port 8001`)"),  # the defaults
    ],
)  # fmt: skip
def test_each_setting_make_cannot_carry_is_kept(settings: dict[str, Any], command: str) -> None:
    stack = Stack(env={}, **{"log_dir": Stack().state_dir / "log", **settings})
    assert stack.up_command(api_port=8001) == command


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


@pytest.mark.parametrize(
    ("root_path", "docs", "dashboard"),
    [
        ("", "http://127.0.0.1:8123/docs", "http://127.0.0.1:8123/"),
        (
            "/pipelines/",
            "through your proxy, at /pipelines/docs",
            "through your proxy, at /pipelines/ (UVICORN_ROOT_PATH=/pipelines)",
        ),
    ],
)
def test_make_up_says_where_the_dashboard_opens(
    tmp_path: Path, root_path: str, docs: str, dashboard: str
) -> None:
    """Under a proxy's prefix the pages link under it: opened straight from the API's port, as
    make up said, every link and script call was a 404."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    stack = Stack(
        env={**env, "UVICORN_ROOT_PATH": root_path},
        api_port=8123,
        prefect_port=4299,
        state_dir=tmp_path,
        log_dir=tmp_path / "log",
    )
    assert banner(stack) == (
        f"\n  API          http://127.0.0.1:8123   (OpenAPI docs: {docs})\n"
        f"  dashboard    {dashboard}\n"
        "  Prefect UI   http://127.0.0.1:4299\n"
        "  Prefect API  http://127.0.0.1:4299/api\n"
        f"  logs         {tmp_path}/log/*.log\n"
        f"  run files    {tmp_path}/data/runs/<run id>/\n\n"
        "Ctrl-C (or `make down`) stops everything."
    )


def test_make_up_warns_of_prefect_ui_addresses_at_another_port(tmp_path: Path) -> None:
    """.env.example's PREFECT_UI_URL=http://localhost:4200 under `make up PREFECT_PORT=4299`:
    every flow run's link (the API's prefect_flow_run_url, the dashboard's) opened port 4200."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}

    def said(**ui: str) -> str:
        stack = Stack(env={**env, **ui}, api_port=8123, prefect_port=4299, state_dir=tmp_path)
        return banner(stack).split("<run id>/\n\n")[1]

    assert said(
        PREFECT_UI_URL="http://localhost:4200", PREFECT_UI_API_URL="http://127.0.0.1/api"
    ) == (
        "warning: PREFECT_UI_URL=http://localhost:4200 is not this stack's Prefect server (port "
        "4299): links to runs in Prefect's UI open port 4200; remove it from .env (the stack "
        "sets its own) or give it this stack's port\n\n"
        "warning: PREFECT_UI_API_URL=http://127.0.0.1/api is not this stack's Prefect server "
        "(port 4299): Prefect's UI asks port 80 for what it shows; remove it from .env (the "
        "stack sets its own) or give it this stack's port\n\n"
        "Ctrl-C (or `make down`) stops everything."
    )
    ok = "Ctrl-C (or `make down`) stops everything."
    # in .env only (`cp .env.example .env`), where the API reads it too: it was not looked at
    env_file = tmp_path / "example.env"
    env_file.write_text("PREFECT_UI_URL=http://localhost:4200\n")
    in_file = Stack(
        env=env, api_port=8123, prefect_port=4299, state_dir=tmp_path, env_file=env_file
    )
    assert banner(in_file).split("<run id>/\n\n")[1] == (
        "warning: PREFECT_UI_URL=http://localhost:4200 is not this stack's Prefect server (port "
        "4299): links to runs in Prefect's UI open port 4200; remove it from .env (the stack "
        f"sets its own) or give it this stack's port\n\n{ok}"
    )
    assert said(PREFECT_UI_URL="http://localhost:4299") == ok
    assert said(PREFECT_UI_URL="https://prefect.example.com") == ok  # a proxy's: not ours to say
