"""`make clean STATE_DIR=…` deletes that stack's state directory once the stack is stopped (it
stopped the stack and left all 705 MB of it), and refuses a directory that is not one."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.stack.clean import GIVE, NotAStateDirError, clean, refusal
from app.stack.ledger import Ledger
from app.stack.processes import Process
from tests.support.postgres import free_port

# run by `make test`, make is make's child: its flags (-w: "Leaving directory") are not ours
OUTER = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def a_stacks_state(state: Path) -> Path:
    """What `make up` leaves in its state directory."""
    for part in ("log", "prefect", "data/runs/1", "tmp"):
        (state / part).mkdir(parents=True)
    (state / "pipelines.db").write_bytes(b"SQLite format 3\0")
    (state / "data/runs/1/ingest.parquet").write_bytes(b"PAR1")
    (state / "log/api.log").write_text("started\n")
    return state


def _make_in(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The project's Makefile run in `checkout`, a directory that links to its venv and app: its
    `rm -rf var` and caches are that directory's, not the project's."""
    for name in (".venv", "app"):
        if not (checkout / name).exists():
            (checkout / name).symlink_to(PROJECT_ROOT / name)
    where = ["-f", str(PROJECT_ROOT / "Makefile"), "-C", str(checkout), "--no-print-directory"]
    return subprocess.run(
        ["make", *where, *args, f"API_PORT={free_port()}", f"PREFECT_PORT={free_port()}"],
        env={name: value for name, value in os.environ.items() if name not in OUTER},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_make
def test_make_clean_deletes_the_state_directory_it_is_given(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "var/log").mkdir(parents=True)  # the default stack's: not this one
    (checkout / ".ruff_cache").mkdir()
    state = a_stacks_state(tmp_path / "x/state")
    done = _make_in(checkout, "clean", f"STATE_DIR={state}")
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"no stack runs with its ledger in {state}/log",  # make down STATE_DIR=…, first
        f".venv/bin/python -m app.stack.clean '{state}'",
        f"deleted STATE_DIR={state}",
        "rm -rf .pytest_cache .mypy_cache .ruff_cache",
    ]
    assert (state.exists(), (tmp_path / "x").exists()) == (False, True)
    assert sorted(os.listdir(checkout)) == [".venv", "app", "var"]  # caches gone, var kept


@needs_make
def test_make_clean_refuses_a_directory_that_is_no_stacks_state(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    state = a_stacks_state(tmp_path / "work")
    (state / "notes.txt").write_text("mine\n")
    refused = _make_in(checkout, "clean", f"STATE_DIR={state}")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.splitlines()[0] == (
        f"make clean: STATE_DIR={state} holds files a stack does not make there (notes.txt); "
        f"delete it yourself if it is what you mean, or {GIVE}"
    )
    assert sorted(os.listdir(state)) == [
        "data",
        "log",
        "notes.txt",
        "pipelines.db",
        "prefect",
        "tmp",
    ]


@needs_make
def test_the_default_clean_deletes_var_and_the_caches() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "clean"],
        env={name: value for name, value in os.environ.items() if name not in OUTER},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert dry_run.stdout.splitlines()[-2:] == [
        "rm -rf var",
        "rm -rf .pytest_cache .mypy_cache .ruff_cache",
    ]


@pytest.mark.parametrize(
    "place", [Path("/"), Path.home(), PROJECT_ROOT, PROJECT_ROOT.parent, PROJECT_ROOT / "app/.."]
)
def test_the_root_home_and_checkout_are_never_deleted(place: Path) -> None:
    assert refusal(place) == (
        f"STATE_DIR={place} is {place.resolve()}: the root, your home directory, this checkout or "
        f"a directory holding one of them is never a stack's state directory; {GIVE}"
    )


def test_a_directory_without_a_stacks_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    assert [refusal(tmp_path / "empty"), refusal(tmp_path / "file")] == [
        f"STATE_DIR={tmp_path}/empty is empty: no stack's state is there; {GIVE}",
        f"STATE_DIR={tmp_path}/file is not a directory; {GIVE}",
    ]
    assert (
        clean(tmp_path / "none") == f"nothing to delete: STATE_DIR={tmp_path}/none does not exist"
    )


def test_a_directory_of_only_names_a_stack_uses_too_is_refused(tmp_path: Path) -> None:
    """`data/` and `log/` are anyone's names: a project's data/customers.csv is no stack's."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data/customers.csv").write_text("id\n1\n")
    (project / "log").mkdir()
    assert refusal(project) == (
        f"STATE_DIR={project} holds no stack's database, Prefect home or ledger, only data, log; "
        f"delete it yourself if it is what you mean, or {GIVE}"
    )
    with pytest.raises(NotAStateDirError):
        clean(project)
    assert (project / "data/customers.csv").read_text() == "id\n1\n"


def test_a_running_stacks_state_is_refused(tmp_path: Path) -> None:
    state = a_stacks_state(tmp_path / "state")
    sleep = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(os.devnull, "wb") as log:
            Ledger(state / "log/processes-8000.json").write([Process("api", sleep, log)])
        with pytest.raises(NotAStateDirError) as refused:
            clean(state)
    finally:
        sleep.kill()
        sleep.wait()
    assert str(refused.value) == (
        f"a stack of STATE_DIR={state} still runs (process {os.getpid()}); stop it first: "
        f"make down STATE_DIR={state}"
    )
    assert (state / "pipelines.db").exists()


def test_a_link_to_a_state_directory_goes_with_it(tmp_path: Path) -> None:
    state = a_stacks_state(tmp_path / "disk/state")
    (tmp_path / "state").symlink_to(state)
    assert clean(tmp_path / "state") == f"deleted STATE_DIR={tmp_path}/state"
    assert sorted(os.listdir(tmp_path)) == ["disk"]
    assert os.listdir(tmp_path / "disk") == []
