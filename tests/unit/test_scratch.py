"""Temporary directories (app/scratch.py): a worker's is removed once its worker is gone and no
process uses it; a stack's is emptied as it starts, unless a process uses it."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import scratch
from app.config import PROJECT_ROOT
from app.stack import locks
from app.stack.topology import Stack

HOLDER = (
    "import sys, time\n"
    "from app import scratch\n"
    "print(scratch.own_directory(sys.argv[1]), flush=True)\n"
    "time.sleep(60)\n"
)


def _leftovers(directory: Path) -> None:
    """What Prefect and ddtrace leave: runner_storage/<uuid>, a run's tmp…prefect, a ddtrace file."""
    (directory / "runner_storage" / "0029c737-b714-41b9-8f91-2a67d6470c87").mkdir(parents=True)
    (directory / "tmp0e0lsm_1prefect").mkdir()
    (directory / "6fb4c6a2ca1524fa").touch()


@pytest.fixture
def sleeper() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _sleep(started: list[subprocess.Popen[bytes]], **options: object) -> None:
    process = subprocess.Popen(["sleep", "60"], **options)  # type: ignore[call-overload]
    started.append(process)


def test_a_dead_workers_directory_goes_and_a_live_ones_stays(
    tmp_path: Path, sleeper: list[subprocess.Popen[bytes]]
) -> None:
    live = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE
    )
    sleeper.append(live)  # type: ignore[arg-type]
    assert live.stdout is not None
    live_directory = Path(live.stdout.readline().decode().strip())
    killed = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE
    )
    assert killed.stdout is not None
    killed_directory = Path(killed.stdout.readline().decode().strip())
    killed.kill()  # SIGKILL: it removes nothing
    killed.wait()
    killed.stdout.close()
    for directory in (live_directory, killed_directory):
        _leftovers(directory)
    unlocked_in_use = scratch.own_directory(str(tmp_path))  # this process holds it: let go
    scratch.release(unlocked_in_use)
    _sleep(sleeper, env={"TMPDIR": str(unlocked_in_use)})  # a run of a worker killed outright

    assert scratch.sweep(str(tmp_path)) == [killed_directory]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live_directory.name, unlocked_in_use.name]
    )
    assert sorted(os.listdir(live_directory)) == [
        "6fb4c6a2ca1524fa",
        "runner_storage",
        "tmp0e0lsm_1prefect",
    ]


def test_a_worker_removes_its_own_directory_unless_a_process_it_started_still_uses_it(
    tmp_path: Path, sleeper: list[subprocess.Popen[bytes]]
) -> None:
    used = scratch.own_directory(str(tmp_path))
    _sleep(sleeper, cwd=used)
    scratch.remove_own(used)
    assert used.exists()
    unused = scratch.own_directory(str(tmp_path))
    _leftovers(unused)
    scratch.remove_own(unused)
    assert not unused.exists()


def test_a_stacks_directory_is_emptied_only_when_no_process_uses_it(
    tmp_path: Path, sleeper: list[subprocess.Popen[bytes]]
) -> None:
    directory = tmp_path / "tmp"
    directory.mkdir()
    _leftovers(directory)
    _sleep(sleeper, env={"TMPDIR": str(directory / "pipeline-worker-x")})
    assert scratch.empty(directory) is None
    assert len(os.listdir(directory)) == 3
    (stopped := sleeper.pop()).kill()
    stopped.wait()
    assert scratch.empty(directory) == 3
    assert os.listdir(directory) == []


def test_a_stack_does_not_empty_the_directory_another_running_stack_holds(tmp_path: Path) -> None:
    directory = tmp_path / "tmp"
    first, removed = scratch.share(directory)
    assert removed == 0
    try:
        _leftovers(directory)
        second, removed = scratch.share(directory)
        os.close(second)
        assert removed is None
        assert len(os.listdir(directory)) == 3
    finally:
        os.close(first)
    third, removed = scratch.share(directory)
    os.close(third)
    assert removed == 3


def test_a_stack_gives_its_processes_its_tmp_and_empties_it_as_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(env={}, state_dir=tmp_path, log_dir=tmp_path / "log")
    assert stack.process_env()["TMPDIR"] == str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    _leftovers(tmp_path / "tmp")
    stack._empty_tmp_dir()
    try:
        assert os.listdir(tmp_path / "tmp") == []
        assert capsys.readouterr().out == (
            f"removed 3 entries from {tmp_path / 'tmp'}, left by processes that are gone\n"
        )
    finally:
        locks.release(stack.held)
