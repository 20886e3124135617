"""What the CLI writes: user text shown as text, never as terminal commands, markup or emoji;
and a reader that goes away (`| head`) is no failure."""

import io
import subprocess
import sys

from rich.table import Table

from app.cli import base
from app.config import PROJECT_ROOT


def test_control_characters_and_emoji_codes_in_user_text_are_shown_as_text() -> None:
    """A name with ESC[2J cleared the reader's screen; ESC]0; retitled their window; ':x:' in
    an error became an emoji."""
    out = io.StringIO()
    console = base.stdout()
    console.file = out
    table = Table("name")
    table.add_row("ok\x1b[2J\x1b]0;owned\x07 :x: [bold]")
    console.print(table, width=60)
    console.print("run failed: bad value :x: in row 3\r")
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text  # (Rich drops BEL, CR)
    assert "ok\\x1b[2J\\x1b]0;owned :x: [bold]" in text
    assert text.endswith("\nrun failed: bad value :x: in row 3\n")


def test_a_reader_that_goes_away_ends_the_command_with_0() -> None:
    """`pipeline logs 1 | head -1` exited 1, the code of a failed run, under `set -o pipefail`."""
    script = (
        "from app.cli.base import stdout\n"
        "console = stdout()\n"
        "for n in range(100_000):\n"
        "    console.print(f'line {n}')\n"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f'{sys.executable} -c "$SCRIPT" | head -1'],
        env={"SCRIPT": script, "PATH": "/usr/bin:/bin"},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "line 0\n", "")
