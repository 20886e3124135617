"""What the CLI writes: user text shown as text, never as terminal commands, markup or emoji;
and a reader that goes away (`| head`) is no failure."""

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import FlowRun
from rich.table import Table

from app.cli import base
from app.config import PROJECT_ROOT
from app.pipeline import orchestrator


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


def test_bidi_controls_in_user_text_are_shown_as_escapes() -> None:
    """A name stored with U+202E (before the API refused it) reversed the rest of its row."""
    out = io.StringIO()
    console = base.stdout()
    console.file = out
    console.print("bidi\u202ehere \u2066x\u2069 \u200f")
    assert out.getvalue() == "bidi\\u202ehere \\u2066x\\u2069 \u200f\n"  # a mark reorders nothing


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


def _installed(url: str, encoding: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `pipeline ARGS` on a terminal whose encoding is `encoding`."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("pipeline")), *args],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONIOENCODING": encoding,
            "PIPELINE_API_URL": url,
            "COLUMNS": "100",
            "NO_COLOR": "1",
        },
        capture_output=True,
        encoding=encoding,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("encoding", "dot"), [("latin-1", "·"), ("ascii", "-")])
async def test_a_terminal_that_is_not_utf8_gets_what_it_can_show_never_a_crash(
    served: str, monkeypatch: pytest.MonkeyPatch, encoding: str, dot: str
) -> None:
    """Under PYTHONIOENCODING=latin-1 or ascii `pipeline run` exited 70 (a bug of ours) after
    the pipeline was created, on the “ ” around its name; --help on its • bullets."""

    async def trigger_run(*, pipeline_id: int, run_id: int, record_count: int, key: str) -> FlowRun:
        return FlowRun(id=UUID(int=7), flow_id=UUID(int=99))

    monkeypatch.setattr(orchestrator, "trigger_run", trigger_run)
    ran = await asyncio.to_thread(
        _installed, served, encoding, "run", "--records", "10", "--name", "café “q”"
    )
    name = 'café "q"' if encoding == "latin-1" else 'caf? "q"'
    assert (ran.returncode, ran.stdout, ran.stderr) == (
        0,
        f'pipeline 1 "{name}" created; run 1 pending\n'
        f"Prefect flow run: {orchestrator.flow_run_url(str(UUID(int=7)))}\n"
        "follow it: pipeline watch 1\n",
        "",
    )
    shown = await asyncio.to_thread(_installed, served, encoding, "show", "1")
    assert (shown.returncode, shown.stderr) == (0, "")
    lines = shown.stdout.splitlines()
    assert (lines[0], lines[3]) == (
        f'pipeline 1 "{name}" {dot} pending',
        f"  latest    run 1 {dot} pending",
    )
    assert lines[5:9] == [  # Rich draws ASCII boxes when the terminal is not UTF-8
        "+-------------------------------------------------------------------+",
        "| stage     | status  | duration | records in | records out | error |",
        "|-----------+---------+----------+------------+-------------+-------|",
        "| generate  | pending |          |            |             |       |",
    ]
    # --json stays lossless: what the terminal cannot show is escaped
    listed = await asyncio.to_thread(_installed, served, encoding, "list", "--json")
    assert (listed.returncode, listed.stdout.isascii()) == (0, True)
    assert json.loads(listed.stdout)["items"][0]["name"] == "café “q”"
    helped = await asyncio.to_thread(_installed, served, encoding, "--help")
    assert (helped.returncode, helped.stderr) == (0, "")
    exit_codes = helped.stdout.split(" Exit codes:")[1].splitlines()
    assert [line.rstrip() for line in exit_codes[2:5] + exit_codes[11:12]] == [
        "  * 0 done (--wait: the run completed)",
        "  * 1 the run failed or was cancelled; doctor: a check failed",
        "  * 2 bad usage; download: an --output unusable as given (it exists: --force; no such "
        "directory)",
        "  * 9 download: could not write the file (no permission, disk full)",
    ]


def test_what_a_terminal_cannot_show_becomes_a_character_that_looks_alike() -> None:
    """One character for one, so that a table's borders stay in line; ? when nothing is alike."""
    quoted = "\N{LEFT SINGLE QUOTATION MARK}cut\N{RIGHT SINGLE QUOTATION MARK}"
    text = f"pipeline 1 “q” · run 2 — {quoted} input… • 日"
    assert text.encode("ascii", errors=base.LOOKALIKES) == (
        b"pipeline 1 \"q\" - run 2 - 'cut' input~ * ?"
    )
    assert text.encode("latin-1", errors=base.LOOKALIKES) == (
        "pipeline 1 \"q\" · run 2 - 'cut' input~ * ?".encode("latin-1")
    )
