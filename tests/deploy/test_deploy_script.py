"""`python app/pipeline/deploy.py` (`make deploy`, compose's init) registers the deployment on the
configured Prefect server, never on a throwaway one."""

import os
import socket
import subprocess
import sys
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
