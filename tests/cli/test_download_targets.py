"""Where `pipeline download -o` writes: a device or FIFO is written into, never replaced (as root,
`-o /dev/null --force` replaced /dev/null with a regular file); a symbolic link is followed and
kept; a trailing slash means a directory; Parquet never goes to a terminal; and each refusal has
the exit code the README's table gives it."""

import contextlib
import os
import pty
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from app.pipeline.store import RunFiles
from tests.cli.conftest import AppTransport, Cli
from tests.cli.test_download import RESULTS_CSV, WIDE, completed_run, names, usage_error
from tests.support.postgres import free_port

pytestmark = pytest.mark.usefixtures("here")  # tests/cli/conftest.py
SIZE = len(RESULTS_CSV.encode())


@contextlib.contextmanager
def reading(fifo: Path) -> Iterator[list[bytes]]:
    """A reader of `fifo` in a thread, as `cat fifo` would be: what it read, once the block ends.
    A writer that never came is stood in for (an empty write), so the reader never hangs."""
    read: list[bytes] = []

    def reader() -> None:
        with fifo.open("rb") as handle:
            read.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        yield read
    finally:
        if thread.is_alive() and stat.S_ISFIFO(fifo.stat().st_mode):
            with contextlib.suppress(OSError):  # no reader waiting after all
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)


async def test_a_fifo_is_written_into_and_stays_a_fifo(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    await completed_run(tmp_path)
    fifo = here / "pipe"
    os.mkfifo(fifo)
    for force in ([], ["--force"]):  # nothing is replaced: --force changes nothing
        with reading(fifo) as read:
            wrote = await cli("download", "1", "--format", "csv", "-o", "pipe", *force)
        assert (wrote.exit_code, wrote.stdout, wrote.stderr) == (
            0,
            f"wrote {SIZE:,} bytes to pipe\n",
            "",
        )
        assert read == [RESULTS_CSV.encode()]
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert names(here) == ["pipe"]  # no temporary file left beside it


async def test_dev_null_is_written_through_never_replaced(cli: Cli, tmp_path: Path) -> None:
    """Without --force: a device is written into, as `> /dev/null` does (the old code, given
    --force as root, replaced it; this test never passes --force for /dev/null)."""
    await completed_run(tmp_path)
    wrote = await cli("download", "1", "--format", "csv", "-o", "/dev/null")
    assert (wrote.exit_code, wrote.stdout, wrote.stderr) == (
        0,
        f"wrote {SIZE:,} bytes to /dev/null\n",
        "",
    )
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert [name for name in os.listdir("/dev") if name.startswith(".null.")] == []  # no .part


async def test_a_link_is_followed_and_kept(cli: Cli, tmp_path: Path, here: Path) -> None:
    await completed_run(tmp_path)
    real = here / "real.csv"
    real.write_text("keep me\n")
    real.chmod(0o600)
    (here / "link.csv").symlink_to("real.csv")
    refused = await cli("download", "1", "--format", "csv", "-o", "link.csv", env=WIDE)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        2,
        "",
        usage_error(
            "Invalid value for --output: link.csv exists; pass --force to replace it, or "
            "--output another path"
        ),
    )
    assert real.read_text() == "keep me\n"

    forced = await cli("download", "1", "--format", "csv", "-o", "link.csv", "--force")
    assert (forced.exit_code, forced.stdout, forced.stderr) == (
        0,
        f"saved link.csv ({SIZE:,} bytes)\n",
        "",
    )
    assert os.readlink(here / "link.csv") == "real.csv"
    assert real.read_text() == RESULTS_CSV
    assert oct(real.stat().st_mode & 0o777) == "0o600"  # the file replaced keeps its permissions

    # a link to no file yet: the file it names is made, no --force needed
    (here / "dangling.csv").symlink_to("made.csv")
    made = await cli("download", "1", "--format", "csv", "-o", "dangling.csv")
    assert (made.exit_code, made.stdout) == (0, f"saved dangling.csv ({SIZE:,} bytes)\n")
    assert os.readlink(here / "dangling.csv") == "made.csv"
    assert (here / "made.csv").read_text() == RESULTS_CSV
    assert names(here) == ["dangling.csv", "link.csv", "made.csv", "real.csv"]


async def test_a_link_under_the_apis_name_is_never_followed(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    """A link planted under the name the API gives (here, or in -o DIR) had the server's bytes
    written wherever it pointed, a dangling one without --force: as root, a file anywhere."""
    await completed_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted = here / "pipeline-1-run-1-results.csv"
    planted.symlink_to(elsewhere / "planted")  # dangling
    refused = await cli("download", "1", "--format", "csv", env=WIDE)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        2,
        "",
        usage_error(
            "Invalid value: pipeline-1-run-1-results.csv exists; pass --force to replace it, or "
            "--output another path"
        ),
    )
    into_dir = await cli("download", "1", "--format", "csv", "-o", ".", env=WIDE)
    assert into_dir.exit_code == 2
    assert names(elsewhere) == []

    forced = await cli("download", "1", "--format", "csv", "--force")
    assert (forced.exit_code, forced.stdout) == (
        0,
        f"saved pipeline-1-run-1-results.csv ({SIZE:,} bytes)\n",
    )
    assert not planted.is_symlink()  # the link itself was replaced, by the file
    assert planted.read_text() == RESULTS_CSV
    assert names(elsewhere) == []


async def test_a_replaced_file_keeps_no_set_id_bit(cli: Cli, tmp_path: Path, here: Path) -> None:
    await completed_run(tmp_path)
    mine = here / "mine.csv"
    mine.write_text("old\n")
    mine.chmod(0o4755)
    forced = await cli("download", "1", "--format", "csv", "-o", "mine.csv", "--force")
    assert forced.exit_code == 0
    assert (oct(mine.stat().st_mode & 0o7777), mine.read_text()) == ("0o755", RESULTS_CSV)


async def test_a_trailing_slash_means_a_directory_that_must_exist(
    cli: Cli, transport: AppTransport, tmp_path: Path, here: Path
) -> None:
    """`-o newdir/` wrote a file named newdir. A directory is not made: a typo in its name would
    be made too, and the file lost in it; the user makes it (as cp and curl -o want)."""
    await completed_run(tmp_path)
    cases = {
        "newdir/": "Invalid value for --output: no directory newdir/; create it first, or give "
        "a directory that exists",
        "nodir/x.csv": "Invalid value for --output: no directory nodir/ to write x.csv in; "
        "create it first, or give a directory that exists",
    }
    (here / "file").write_text("mine\n")
    cases["file/"] = (
        "Invalid value for --output: file/ is not a directory; leave out the trailing /, or "
        "give a directory"
    )
    # it said "no directory file/": there is one thing of that name, a file
    cases["file/x.csv"] = (
        "Invalid value for --output: file is a file, not a directory to write x.csv in; give a "
        "directory that exists"
    )
    for output, message in cases.items():
        refused = await cli("download", "1", "--format", "csv", "-o", output, env=WIDE)
        assert (refused.exit_code, refused.stdout, refused.stderr) == (
            2,
            "",
            usage_error(message),
        ), output
    assert transport.sent == []  # said before the API is asked
    assert names(here) == ["file"]

    (here / "newdir").mkdir()
    saved = await cli("download", "1", "--format", "csv", "-o", "newdir/")
    assert (saved.exit_code, saved.stdout) == (
        0,
        f"saved newdir/pipeline-1-run-1-results.csv ({SIZE:,} bytes)\n",
    )


async def test_an_existing_file_is_bad_usage_and_a_failed_write_exit_9(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    """Both were exit 2, whose usage box the README promised and neither showed: an --output
    unusable as given is bad usage (the box, exit 2); a write the system refuses is exit 9 (it
    was 1, a failed run's code)."""
    await completed_run(tmp_path)
    (here / "pipeline-1-run-1-results.csv").write_text("mine\n")
    exists = await cli("download", "1", "--format", "csv", env=WIDE)
    assert (exists.exit_code, exists.stdout, exists.stderr) == (
        2,
        "",
        usage_error(
            "Invalid value: pipeline-1-run-1-results.csv exists; pass --force to replace it, or "
            "--output another path"
        ),
    )
    full = await cli("download", "1", "--format", "csv", "-o", "/dev/full")  # always ENOSPC
    assert (full.exit_code, full.stdout, full.stderr) == (
        9,
        "",
        "error: cannot write /dev/full: No space left on device\n",
    )
    # a directory even root cannot make a file in
    proc = await cli("download", "1", "--format", "csv", "-o", "/proc/results.csv")
    assert (proc.exit_code, proc.stdout, proc.stderr) == (
        9,
        "",
        "error: cannot write /proc/results.csv: No such file or directory\n",
    )
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)
    assert (here / "pipeline-1-run-1-results.csv").read_text() == "mine\n"


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """The installed `pipeline ARGS` with its stdout a terminal (a pty), its API nowhere: its
    exit code, what the terminal got and its stderr."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("pipeline")), "--api-url", url, *args],
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(terminal)
        shown = b""
        try:
            while chunk := os.read(controller, 4096):
                shown += chunk
        except OSError:  # EIO: nothing more on a pty whose other end is closed
            pass
    finally:
        os.close(controller)
    return result.returncode, shown.decode(), result.stderr.replace(url, "URL")


def test_parquet_is_not_written_to_a_terminal() -> None:
    """`-o -` on a terminal dumped Parquet's bytes on it. Refused before the API is asked (here
    there is none); text (CSV, JSON Lines, the summary's JSON) goes on to ask it."""
    message = (
        "Invalid value for --output: Parquet is binary and would garble the terminal; save it "
        "with -o FILE, ask for text with --format csv or --format jsonl, or pipe it to a program"
    )
    for args in (["1", "-o", "-"], ["1", "rejects", "--format", "parquet", "-o", "-"]):
        assert _on_a_terminal("download", *args) == (2, "", usage_error(message)), args
    unreachable = (
        "error: cannot reach the API at URL: connection refused; start it with `make up` (or "
        "`pipeline up`) or set PIPELINE_API_URL\n"
    )
    for args in (["1", "--format", "csv", "-o", "-"], ["1", "summary", "-o", "-"]):
        assert _on_a_terminal("download", *args) == (3, "", unreachable), args


async def test_a_format_that_cannot_hold_a_column_names_the_option(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    """The API's `download format=parquet or format=jsonl`, in this command's terms."""
    await completed_run(tmp_path)
    pl.DataFrame({"id": [1], "tags": [["a", "b"]]}).write_parquet(RunFiles.for_run(1).results)
    refused = await cli("download", "1", "--format", "csv")
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        4,
        "",
        "error: format: csv cannot hold the column(s) tags (List(String)); pass --format "
        "parquet or --format jsonl\n",
    )
    assert names(here) == []
