"""A worker started by hand (`python -m app.pipeline.worker …`, PREFECT_API_URL unset in the shell)
works against the Prefect server the service's settings name, never a throwaway one."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from tests.e2e.helpers import child_pids

# The worker with the project's .env at argv[1] (PREFECT_API_URL is only there), started from
# another directory: Prefect itself reads the .env of the directory it runs in, Settings the
# project's.
HAND_STARTED = (
    "import sys\n"
    "from pathlib import Path\n"
    "from app.config import Settings\n"
    "Settings.model_config['env_file'] = Path(sys.argv[1])\n"
    "from app.pipeline.worker import main\n"
    "main(['--pool', 'hand-started', '--type', 'process'])\n"
)


class _Recorder(BaseHTTPRequestHandler):
    """Stands in for the Prefect server: records each request's path, answers 503."""

    paths: list[str]

    def _answer(self) -> None:
        self.paths.append(self.path)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PATCH = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def prefect_stand_in() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []
    handler = type("Recorder", (_Recorder,), {"paths": paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", paths
    finally:
        server.shutdown()
        server.server_close()


def test_a_hand_started_worker_uses_the_configured_server(
    tmp_path: Path, prefect_stand_in: tuple[str, list[str]]
) -> None:
    """It printed "Starting temporary server on http://127.0.0.1:8184", then failed with
    "`PREFECT_API_URL` must be set to start a Worker"."""
    url, paths = prefect_stand_in
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / ".env").write_text(f"PREFECT_API_URL={url}\n")
    unset = ("PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_ENABLED")  # as in a user's shell
    env = {name: value for name, value in os.environ.items() if name not in unset}
    worker = subprocess.Popen(
        [sys.executable, "-c", HAND_STARTED, str(tmp_path / "project" / ".env")],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT), "TMPDIR": str(tmp_path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120  # its zygote imports Prefect and the pipeline first
        while not paths and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        asked = list(paths)
        # what its zygote, and so every flow run it forks, was given
        zygote_env = [_environ(pid) for pid in child_pids(worker.pid)]
    finally:
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)  # it and its zygote
            output, _ = worker.communicate(timeout=30)
    assert "Starting temporary server" not in output, output
    assert f"worker: Prefect server {url}" in output.splitlines(), output
    assert asked and asked[0].startswith("/api/"), output
    # Prefect's server answers 500 while its database is down: its clients retry it as a 503
    assert [env.get("PREFECT_CLIENT_RETRY_EXTRA_CODES") for env in zygote_env] == ["500"], output


def _environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().partition("=")[::2] for entry in entries if b"=" in entry)
