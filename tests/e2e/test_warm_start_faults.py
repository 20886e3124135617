"""The warm start when things go wrong: a silent client, a zygote that cannot fork or hangs up,
a run killed outright, processes a run started, its socket directory. A real zygote (from
test_warm_start) or a stand-in socket that misbehaves on purpose; no stack."""

import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from app.pipeline.warm_start import zygote_keeper
from tests.e2e.test_warm_start import children, launch, zygote

__all__ = ["zygote"]  # the module's zygote fixture, shared


def _stand_in(path: Path, answer: Callable[[socket.socket], None]) -> threading.Thread:
    """A "zygote" that takes one launcher's request and answers it with `answer`."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        _message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        for fd in fds:
            os.close(fd)
        answer(conn)
        conn.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_client_that_never_sends_does_not_stall_the_next_runs(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    """The zygote read one connection at a time with no limit: every launcher after a silent
    one waited until it went away."""
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    silent.connect(zygote[1])
    try:
        launcher = launch(zygote[1], "not-a-uuid")
        output, _ = launcher.communicate(timeout=30)  # served once the silent one timed out
    finally:
        silent.close()
    assert launcher.returncode == 1
    assert "warm start unavailable" not in output
    assert zygote[0].poll() is None


def test_a_zygote_that_hangs_up_before_the_pid_means_a_cold_start(tmp_path: Path) -> None:
    """It could not fork (a process limit): the launcher printed "the zygote went away" and the
    run failed, instead of starting cold."""
    path = tmp_path / "z.sock"
    served = _stand_in(path, lambda conn: None)
    output, _ = launch(str(path), "not-a-uuid").communicate(timeout=120)
    served.join(5)
    assert output.startswith(
        f"warm start unavailable (the zygote at {path} closed the connection before starting "
        "the run); starting the flow run cold"
    )
    assert "Invalid flow run id. Received arguments: ['" in output  # Prefect's own engine


def test_a_signal_to_the_launcher_reaches_what_the_run_started(tmp_path: Path) -> None:
    """A cancel (SIGTERM) reached the run's own process only: a program it had started lived on,
    where a cold run's whole process group is signalled."""
    run = subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
    deadline = time.monotonic() + 10
    while not (started := children(run.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(started) == 1
    path = tmp_path / "z.sock"
    told = threading.Event()

    def started_it(conn: socket.socket) -> None:
        conn.send(f"pid {run.pid}".encode())
        told.set()
        time.sleep(5)  # the run's end is not reported: the launcher is stopped first

    _stand_in(path, started_it)
    launcher = launch(str(path), "not-a-uuid")
    assert told.wait(10)
    time.sleep(0.3)  # the launcher has read the pid and forwards signals to it
    launcher.send_signal(signal.SIGTERM)
    assert run.wait(10) == -signal.SIGTERM
    deadline = time.monotonic() + 10
    while Path(f"/proc/{started[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{started[0]}").exists()  # the sleep the run started is gone too
    launcher.kill()
    launcher.communicate()


def test_a_run_killed_outright_is_reported_as_killed(
    zygote: tuple[subprocess.Popen[str], str],
) -> None:
    """The launcher exited 137, which Prefect's worker reports as an out-of-memory kill; a cold
    run killed so exits by its signal (-9)."""
    launcher = launch(zygote[1], str(uuid.uuid4()))  # the engine keeps retrying the API
    deadline = time.monotonic() + 30
    while not (running := children(zygote[0].pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(running) == 1
    os.kill(running[0], signal.SIGKILL)
    launcher.communicate(timeout=30)
    assert launcher.returncode == -signal.SIGKILL


def test_the_socket_directory_is_private_and_fits_a_unix_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zygote's successor used whatever directory stood at its path (another user's, made
    after the first zygote removed its own); a long TMPDIR turned the warm start off."""
    own = tmp_path / "own"
    assert zygote_keeper.private_directory(own)  # gone: made, 0700
    assert stat.S_IMODE(own.stat().st_mode) == 0o700
    open_to_all = tmp_path / "open"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    someone_elses = tmp_path / "theirs"
    someone_elses.mkdir(mode=0o700)
    os.chown(someone_elses, 65534, 65534)  # nobody's
    assert (
        zygote_keeper.private_directory(open_to_all),
        zygote_keeper.private_directory(someone_elses),
    ) == (
        False,
        False,
    )
    long = tmp_path / ("t" * 90)
    long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    made = zygote_keeper.socket_directory()
    try:
        assert made.parent == Path("/tmp")
        assert len(str(made / "zygote.sock")) <= zygote_keeper.SOCKET_PATH_MAX
    finally:
        made.rmdir()


def _listening_as(uid: int, path: Path) -> subprocess.Popen[str]:
    """A socket at `path` whose listening process runs as `uid` (bound first, then the user
    dropped: the peer credentials a client sees are those at listen()); it prints what a client
    sent it, if one connects within 20 s."""
    script = (
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
        f"s.bind({str(path)!r})\n"
        f"os.setgid({uid}); os.setuid({uid})\n"
        "s.listen(1); s.settimeout(20); print('listening', flush=True)\n"
        "try:\n"
        "    conn, _ = s.accept(); conn.settimeout(5)\n"
        "    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)\n"
        "    print(f'received {len(message)} bytes, {len(fds)} descriptors', flush=True)\n"
        "except (TimeoutError, OSError) as exc:\n"
        "    print('received nothing', type(exc).__name__, flush=True)\n"
    )
    listener = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert listener.stdout is not None
    assert listener.stdout.readline() == "listening\n"
    return listener


@pytest.mark.skipif(os.getuid() != 0, reason="listening as another user needs root")
def test_a_socket_another_user_answers_or_a_directory_others_may_enter_gets_no_environment(
    tmp_path: Path,
) -> None:
    """The launcher sent every run's environment (its database URL, API keys) and its stdio to
    whatever answered at the socket's path: another local user's socket in a directory they made
    after the zygote removed its own."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    listener = _listening_as(65534, private / "z.sock")
    output, _ = launch(str(private / "z.sock"), "not-a-uuid").communicate(timeout=120)
    assert output.startswith(
        f"warm start unavailable (the zygote at {private / 'z.sock'} runs as user 65534, not as "
        "this one); starting the flow run cold"
    )
    # connected to, to learn who answers, and then left without a word
    assert listener.communicate(timeout=30)[0] == "received 0 bytes, 0 descriptors\n"

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    served = _stand_in(shared / "z.sock", lambda conn: None)
    output, _ = launch(str(shared / "z.sock"), "not-a-uuid").communicate(timeout=120)
    assert output.startswith(
        f"warm start unavailable ({shared} is not this user's own private directory (mode 0700)); "
        "starting the flow run cold"
    )
    assert served.is_alive()  # never connected to
