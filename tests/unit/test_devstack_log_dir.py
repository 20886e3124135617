"""A refused `make up` leaves its state directory without the log directory it never wrote to
(app/stack/topology.py made it before refusing); a stack that starts has it before its first process."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.stack import locks
from app.stack.topology import Stack
from tests.support.postgres import free_port

UNSET = ("DATABASE_URL", "PIPELINE_DATA_DIR", "PREFECT_HOME")  # the state directory's
STARTING = "starting Prefect server, migrations, deployment, worker and API …\n"


def _env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in UNSET}


def _make_up(*args: str) -> subprocess.CompletedProcess[str]:
    """What `make up` runs, with these settings."""
    return subprocess.run(
        [sys.executable, "-m", "app.stack.commands", *args],
        cwd=PROJECT_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def test_make_up_refused_for_a_taken_port_leaves_no_log_directory(
    tmp_path: Path, taken_port: int
) -> None:
    state, api_port = tmp_path / "fresh", free_port()
    up = _make_up(f"--state-dir={state}", f"--prefect-port={taken_port}", f"--api-port={api_port}")
    assert (up.returncode, up.stdout) == (8, STARTING)
    assert up.stderr == (
        f"error: the stack did not start: port {taken_port} on 127.0.0.1 is already in use "
        "(another Prefect server, a `make up` of another checkout or state directory, or `docker "
        "compose up`?): stop it, or give the stack another port: `make up "
        f"STATE_DIR={state} PREFECT_PORT={taken_port + 1} API_PORT={api_port}` (`pipeline up "
        f"--state-dir {state} --prefect-port {taken_port + 1} --api-port {api_port}`)\n"
    )
    assert not (state / "log").exists()


def test_make_up_refused_beside_a_stack_of_its_state_directory_leaves_no_log_directory(
    tmp_path: Path,
) -> None:
    """The running stack keeps its ledger elsewhere (`--log-dir`): its locks refuse this one."""
    state = tmp_path / "fresh"
    running = Stack(env=_env(), state_dir=state, log_dir=tmp_path / "elsewhere")
    held = locks.claim(running.process_env())
    try:
        up = _make_up(
            f"--state-dir={state}", f"--prefect-port={free_port()}", f"--api-port={free_port()}"
        )
    finally:
        locks.release(held)
    assert (up.returncode, up.stdout) == (8, STARTING)
    assert up.stderr == (
        "error: the stack did not start: another running stack uses PIPELINE_DATA_DIR "
        f"({state / 'data'}): two stacks on one database or data directory, each with its own "
        "Prefect server, fail each other's runs; stop that stack, or give this one its own "
        "PIPELINE_DATA_DIR (set in the environment or .env, it wins over STATE_DIR)\n"
    )
    assert sorted(path.name for path in state.iterdir()) == ["data", "pipelines.db.stack.lock"]


def test_a_stack_that_starts_has_its_log_directory_before_its_first_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "fresh"
    seen: list[tuple[str, bool]] = []

    class Spawned(Exception):
        """Stands for the processes: the stack got as far as starting them."""

    def spawn(stack: Stack, name: str, _argv: list[str]) -> None:
        seen.append((name, stack.log_dir.is_dir()))
        raise Spawned(name)

    monkeypatch.setattr(Stack, "_spawn", spawn)
    stack = Stack(env={}, state_dir=state, log_dir=state / "log")
    stack.prefect_port, stack.api_port = free_port(), free_port()
    with pytest.raises(Spawned):
        stack.start()
    assert seen == [("prefect-server", True)]
    assert sorted(path.name for path in (state / "log").iterdir()) == []
