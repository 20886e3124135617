"""`pipeline list --api-url URL`: click takes `pipeline`'s own options only before the command,
and a user writing them after it (as the README's other options are written) got "No such option:
--api-url", exit 2."""

import subprocess
import sys

import pytest

from app.cli import global_options_first
from app.config import PROJECT_ROOT


@pytest.mark.parametrize(
    ("args", "taken"),
    [
        (["list", "--api-url", "http://h:1"], ["--api-url", "http://h:1", "list"]),
        (
            ["show", "3", "--api-key=k", "--json", "--api-url", "u"],
            ["--api-key=k", "--api-url", "u", "show", "3", "--json"],
        ),
        (["--api-url", "u", "list"], ["--api-url", "u", "list"]),
        (["create", "--", "--api-url", "u"], ["create", "--", "--api-url", "u"]),
        (["list", "--api-url"], ["--api-url", "list"]),  # click then says it needs a value
    ],
)
def test_the_global_options_go_first(args: list[str], taken: list[str]) -> None:
    assert global_options_first(args) == taken


def test_an_api_url_after_the_command_is_used() -> None:
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            "list",
            "--api-url",
            "http://127.0.0.1:9",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (
        3,
        "",
        "error: cannot reach the API at http://127.0.0.1:9: connection refused; start it with "
        "`make up` (or `pipeline up`) or set PIPELINE_API_URL\n",
    )
