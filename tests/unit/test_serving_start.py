"""The API's log starts with where it listens and what it uses (app/serving.py): api.log under
`make up` had no line at all until a request failed (uvicorn's own "running on" line is below
the level Prefect's logging configuration shows)."""

import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.serving import listening
from tests.support.postgres import free_port

UVICORN = str(Path(sys.executable).with_name("uvicorn"))


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (
            [UVICORN, "app.main:app", "--host", "127.0.0.1", "--port", "8001"],
            "http://127.0.0.1:8001",
        ),
        (["/x/uvicorn/__main__.py", "app.main:app", "--host", "0.0.0.0"], "http://0.0.0.0:8000"),
        ([UVICORN, "app.main:app", "--host", "::1", "--port", "8002"], "http://[::1]:8002"),
        ([UVICORN, "app.main:app", "--uds", "/run/api.sock"], "unix socket /run/api.sock"),
        ([UVICORN, "app.main:app", "--fd", "3"], "file descriptor 3"),
        (["/usr/bin/pytest", "tests/"], None),  # not uvicorn's command: where is not known
    ],
)
def test_where_uvicorns_command_line_listens(argv: list[str], where: str | None) -> None:
    assert listening(argv) == where


def test_the_api_log_says_where_it_listens_and_which_database_without_passwords(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql+asyncpg://pipeline:s3cret@db.example:5432/pipelines?sslkey=/k",
        "PREFECT_API_URL": "http://user:pw@127.0.0.1:9/api",
        "PIPELINE_WATCHDOG_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [UVICORN, "app.main:app", "--http", "app.serving:BoundedHttpTools"]
    api = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert api.stdout is not None
    try:  # the API's first line, as it starts; none within a minute fails here, not at a hang
        ready, _, _ = select.select([api.stdout], [], [], 60)
        first = api.stdout.readline() if ready else "(no line within 60 s)"
    finally:
        api.kill()
        api.wait()
        api.stdout.close()
    line = re.sub(r"^\d\d:\d\d:\d\d\.\d{3} ", "", first.rstrip("\n"))
    assert line == (
        f"| INFO    | app.serving - API (process {api.pid}) listening on http://127.0.0.1:{port}; "
        "database db.example:5432/pipelines; Prefect API http://127.0.0.1:9/api"
    )
