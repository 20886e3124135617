"""Which socket directories a starting worker sweeps (app/pipeline/warm_start/zygote_directory.py): only
those certainly its kind's and certainly dead; never one a live worker holds or a zygote listens
in, never anything else in the temporary directory."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.pipeline.warm_start.zygote_directory import SOCKET_NAME, hold, release, sweep

HOLDER = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from app.pipeline.warm_start.zygote_directory import hold\n"
    "print(hold(Path(sys.argv[1])), flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def base() -> Iterator[Path]:
    """A temporary base of its own, short enough for a Unix socket's path."""
    made = Path(tempfile.mkdtemp(prefix="sweep-", dir="/tmp"))
    yield made
    shutil.rmtree(made)


def _directory(path: Path, mode: int = 0o700) -> Path:
    path.mkdir()
    path.chmod(mode)
    return path


def _dead_socket(directory: Path) -> Path:
    """A socket whose zygote was killed: the file stays, no process listens on it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as bound:
        bound.bind(str(directory / SOCKET_NAME))
    return directory


def test_only_directories_certainly_dead_are_swept(base: Path) -> None:
    dead = _dead_socket(_directory(base / "pipeline-zygote-dead"))
    empty = _directory(base / "pipeline-zygote-empty")  # killed before its zygote listened
    listening = _directory(base / "pipeline-zygote-listening")  # its zygote outlives its worker
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(listening / SOCKET_NAME))
    listener.listen(1)
    held = _dead_socket(_directory(base / "pipeline-zygote-held"))  # its zygote is restarting
    assert hold(held)
    _dead_socket(_directory(base / "pipeline-zygote-open", 0o755))
    with_more = _dead_socket(_directory(base / "pipeline-zygote-more"))
    (with_more / "notes.txt").write_text("someone's\n")
    not_a_socket = _directory(base / "pipeline-zygote-file")
    (not_a_socket / SOCKET_NAME).write_text("")
    other_prefix = _directory(base / "zygote-dead")
    elsewhere = _directory(base / "elsewhere")
    (base / "pipeline-zygote-link").symlink_to(elsewhere)
    (base / "pipeline-zygote-plain-file").write_text("")
    try:
        assert sweep(str(base)) == [dead, empty]
    finally:
        listener.close()
        release(held)
    assert sorted(os.listdir(base)) == [
        "elsewhere",
        "pipeline-zygote-file",
        "pipeline-zygote-held",
        "pipeline-zygote-link",
        "pipeline-zygote-listening",
        "pipeline-zygote-more",
        "pipeline-zygote-open",
        "pipeline-zygote-plain-file",
        "zygote-dead",
    ]
    assert sorted(os.listdir(with_more)) == ["notes.txt", "zygote.sock"]
    assert os.listdir(other_prefix) == []


@pytest.mark.skipif(os.getuid() != 0, reason="a directory of another user's needs root to make")
def test_another_users_directory_is_left(base: Path) -> None:
    theirs = _dead_socket(_directory(base / "pipeline-zygote-theirs"))
    os.chown(theirs, 65534, 65534)
    assert (sweep(str(base)), os.listdir(base)) == ([], ["pipeline-zygote-theirs"])


def test_the_lock_goes_with_the_worker_that_held_it(base: Path) -> None:
    """Held by a live worker, a directory survives a sweep even while empty (its zygote still
    importing); once that worker is killed outright, the next sweep removes it."""
    directory = base / "pipeline-zygote-w"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "True\n"
        assert (sweep(str(base)), os.listdir(base)) == ([], ["pipeline-zygote-w"])
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert (sweep(str(base)), os.listdir(base)) == ([directory], [])


def test_a_directory_made_again_is_held_again(base: Path) -> None:
    """A zygote that exits removes its directory and its successor's is made again at the same
    path: the lock was on the removed one, and the new one (empty while its zygote imports) was
    swept from under the live worker."""
    directory = base / "pipeline-zygote-again"
    try:
        assert hold(directory)
        directory.rmdir()  # as the zygote does when it exits
        assert hold(directory)
        assert (sweep(str(base)), os.listdir(base)) == ([], ["pipeline-zygote-again"])
    finally:
        release(directory)


def test_a_directory_that_is_not_this_users_private_one_is_not_held(base: Path) -> None:
    open_to_others = _directory(base / "pipeline-zygote-open", 0o755)
    (base / "pipeline-zygote-link").symlink_to(_directory(base / "target"))
    assert (hold(open_to_others), hold(base / "pipeline-zygote-link")) == (False, False)


def test_a_listener_whose_backlog_is_full_is_left_without_blocking_the_sweep(base: Path) -> None:
    """A blocking connect to it never returned, with the starting worker's stop signals held."""
    stuck = _directory(base / "pipeline-zygote-stuck")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(stuck / SOCKET_NAME))
    listener.listen(0)
    waiting = []
    for _ in range(3):  # the backlog, full: no one accepts
        client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(str(stuck / SOCKET_NAME))
        waiting.append(client)
    try:
        assert sweep(str(base)) == []
        assert os.listdir(stuck) == [SOCKET_NAME]
    finally:
        for client in waiting:
            client.close()
        listener.close()
