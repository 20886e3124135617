"""`python app/pipeline/deploy.py` (`make deploy`, compose's init) registers the deployment on the
configured Prefect server, never on a throwaway one."""

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import DEFAULT_PREFECT_API_URL, PROJECT_ROOT


def _in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_without_prefect_api_url_it_fails_on_the_default_server_not_a_throwaway_one(
    tmp_path: Path,
) -> None:
    """Prefect's default profile starts an ephemeral server of its own when no URL is set:
    `make deploy` reported success against it and left the running stack unchanged."""
    if _in_use(4200):
        pytest.skip("127.0.0.1:4200 answers (a `make up`?): this test needs the default port free")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DATABASE_URL"))}
    env |= {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    result = subprocess.run(
        [sys.executable, "app/pipeline/deploy.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        1,
        f"deploy: cannot reach the Prefect API at {DEFAULT_PREFECT_API_URL} (ConnectError); "
        "start the server (make up, or prefect server start) and set PREFECT_API_URL to its "
        "address",
    )


@pytest.fixture
def not_prefect() -> Iterator[str]:
    """A server answering as a Prefect server's root does (PREFECT_API_URL without /api): 404
    and `{"detail":"Not Found"}` to every request."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _not_found(self) -> None:
            body = b'{"detail":"Not Found"}'
            self.send_response(404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _not_found

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_that_is_not_prefect_s_api_is_named_not_a_traceback(
    tmp_path: Path, not_prefect: str
) -> None:
    """Its 404 read as a pool to create, and the create's 404 ended in PrefectHTTPStatusError's
    traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DATABASE_URL"))}
    env |= {
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": not_prefect,
    }
    result = subprocess.run(
        [sys.executable, "app/pipeline/deploy.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"deploy: {not_prefect} is not a Prefect server's API: GET {not_prefect}/health answered "
        f"404, not `true`. PREFECT_API_URL must be the Prefect server's API address, ending in "
        f"/api (try {not_prefect}/api), in every process: API, worker and this one\n",
    )
