"""`pipeline download -o /dev/stdout` (/dev/stderr, /dev/fd/N, /proc/self/fd/N, or a link to one)
writes into the descriptor the shell opened. It followed the link to the file behind it and
renamed another file over it: `> out.csv` needed --force and got a new file, `>> out.csv` lost
what it held, and what a reader of `> >(gzip)` waited for never came."""

import asyncio
import os
import pty
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_download import RESULTS_CSV, completed_run, names, usage_error
from tests.cli.test_download_targets import _on_a_terminal
from tests.support.postgres import free_port

pytestmark = pytest.mark.usefixtures("here")  # tests/cli/conftest.py
SIZE = len(RESULTS_CSV.encode())
CSV = ["download", "1", "--format", "csv"]


def installed(
    url: str, *args: str, stdout: IO[bytes] | int, pass_fds: Sequence[int] = ()
) -> tuple[int, str]:
    """The installed `pipeline ARGS` with its stdout where the test puts it: its exit code and
    its stderr."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("pipeline")), "--api-url", url, *args],
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "NO_COLOR": "1"},
        stdout=stdout,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr.decode()


async def test_dev_stdout_and_the_names_of_it_are_stdout(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    await completed_run(tmp_path)
    (here / "out").symlink_to("/dev/stdout")
    for output in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "out", "-"):
        wrote = await cli(*CSV, "-o", output)
        assert (wrote.exit_code, wrote.stdout, wrote.stderr) == (0, RESULTS_CSV, ""), output
    assert names(here) == ["out"]
    assert [name for name in os.listdir("/dev") if name.startswith(".stdout.")] == []

    into_stderr = await cli(*CSV, "-o", "/dev/stderr")
    assert (into_stderr.exit_code, into_stderr.stdout, into_stderr.stderr) == (
        0,
        f"wrote {SIZE:,} bytes to /dev/stderr\n",
        RESULTS_CSV,
    )


async def test_a_file_the_shell_opened_is_written_into_never_replaced(
    served: str, tmp_path: Path, here: Path
) -> None:
    await completed_run(tmp_path)
    out = here / "out.csv"
    out.write_text("earlier\n")
    inode = out.stat().st_ino
    with out.open("wb") as truncated:  # `> out.csv`: no --force, it is the shell's to open
        said = await asyncio.to_thread(
            installed, served, *CSV, "-o", "/dev/stdout", stdout=truncated
        )
    assert (said, out.read_text(), out.stat().st_ino) == ((0, ""), RESULTS_CSV, inode)

    out.write_text("earlier\n")
    with out.open("ab") as appended:  # `>> out.csv`: after what it holds, --force or not
        for force in ([], ["--force"]):
            said = await asyncio.to_thread(
                installed, served, *CSV, "-o", "/dev/stdout", *force, stdout=appended
            )
            assert said == (0, "")
    assert (out.read_text(), out.stat().st_ino) == ("earlier\n" + 2 * RESULTS_CSV, inode)
    assert names(here) == ["out.csv"]


async def test_dev_fd_n_is_the_descriptor_the_shell_passed(
    served: str, tmp_path: Path, here: Path
) -> None:
    """`-o /dev/fd/N N>>log`; a line saying what was written goes to stdout, unless stdout is
    where the data went (`N>&1`)."""
    await completed_run(tmp_path)
    log, said = here / "log.csv", here / "said.txt"
    log.write_text("earlier\n")
    with log.open("ab") as passed, said.open("wb") as stdout:
        n = passed.fileno()
        exit_code = await asyncio.to_thread(
            installed, served, *CSV, "-o", f"/dev/fd/{n}", stdout=stdout, pass_fds=[n]
        )
    assert exit_code == (0, "")
    assert (log.read_text(), said.read_text()) == (
        "earlier\n" + RESULTS_CSV,
        f"wrote {SIZE:,} bytes to /dev/fd/{n}\n",
    )

    with said.open("wb") as stdout:
        n = os.dup(stdout.fileno())  # `N>&1`
        try:
            exit_code = await asyncio.to_thread(
                installed, served, *CSV, "-o", f"/proc/self/fd/{n}", stdout=stdout, pass_fds=[n]
            )
        finally:
            os.close(n)
    assert (exit_code, said.read_text()) == ((0, ""), RESULTS_CSV)


async def test_stdout_that_cannot_be_written_is_exit_9_and_a_reader_gone_is_0(
    served: str, tmp_path: Path
) -> None:
    await completed_run(tmp_path)
    for output, shown in (("-", "stdout"), ("/dev/stdout", "/dev/stdout")):
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            said = await asyncio.to_thread(installed, served, *CSV, "-o", output, stdout=full)
        finally:
            os.close(full)
        assert said == (9, f"error: cannot write {shown}: No space left on device\n"), output

        reading, writing = os.pipe()
        os.close(reading)  # `| head -0`: the reader is gone before a byte is written
        try:
            said = await asyncio.to_thread(installed, served, *CSV, "-o", output, stdout=writing)
        finally:
            os.close(writing)
        assert said == (0, ""), output


def test_a_descriptor_not_open_is_bad_usage() -> None:
    """Refused before the API is asked (here there is none), with the fix."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    said = installed(url, *CSV, "-o", "/dev/fd/7", stdout=subprocess.DEVNULL)
    assert said == (
        2,
        usage_error(
            "Invalid value for --output: /dev/fd/7 is descriptor 7, which is not open; open it "
            "in the shell (7>FILE), or give a file"
        ),
    )


def test_parquet_to_dev_stdout_on_a_terminal_is_refused_as_for_dash() -> None:
    message = (
        "Invalid value for --output: Parquet is binary and would garble the terminal; save it "
        "with -o FILE, ask for text with --format csv or --format jsonl, or pipe it to a program"
    )
    for output in ("/dev/stdout", "/dev/fd/1"):
        assert _on_a_terminal("download", "1", "-o", output) == (2, "", usage_error(message))


def test_parquet_to_a_terminals_device_by_its_name_is_refused_too() -> None:
    """`-o /dev/tty` (or /dev/pts/N) is no descriptor of the process, but a terminal all the
    same: Parquet's bytes were written on it."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused before asking it
    controller, terminal = pty.openpty()
    try:
        command = ["download", "1", "-o", os.ttyname(terminal)]
        done = subprocess.run(
            [str(Path(sys.executable).with_name("pipeline")), "--api-url", url, *command],
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    message = (
        "Invalid value for --output: Parquet is binary and would garble the terminal; save it "
        "with -o FILE, ask for text with --format csv or --format jsonl, or pipe it to a program"
    )
    assert (done.returncode, done.stderr) == (2, usage_error(message))
