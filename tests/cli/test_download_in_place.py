"""`pipeline download -o FILE --force` of a file with other hard links writes into it, once the
download is whole: renaming a new file over it parted it from its other names (they kept the old
bytes) and gave it a new inode, owner and ACLs. A file with one name is still replaced."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import AppTransport, Cli
from tests.cli.test_download import RESULTS_CSV, completed_run, names

pytestmark = pytest.mark.usefixtures("here")  # tests/cli/conftest.py
SIZE = len(RESULTS_CSV.encode())
CSV = ["download", "1", "--format", "csv"]


async def test_a_file_with_hard_links_is_written_into(cli: Cli, tmp_path: Path, here: Path) -> None:
    await completed_run(tmp_path)
    mine = here / "mine.csv"
    mine.write_text("a much longer file than the results, which must not keep its tail " * 20)
    mine.chmod(0o640)
    os.link(mine, here / "other.csv")
    inode = mine.stat().st_ino
    forced = await cli(*CSV, "-o", "mine.csv", "--force")
    assert (forced.exit_code, forced.stdout, forced.stderr) == (
        0,
        f"saved mine.csv ({SIZE:,} bytes)\n",
        "",
    )
    for name in ("mine.csv", "other.csv"):
        found = (here / name).stat()
        assert (found.st_ino, found.st_nlink, oct(found.st_mode & 0o7777)) == (inode, 2, "0o640")
        assert (here / name).read_text() == RESULTS_CSV
    assert names(here) == ["mine.csv", "other.csv"]  # no temporary file left beside them

    # through a link the user named, and without a set-id bit, as a replaced file
    (here / "link.csv").symlink_to("other.csv")
    mine.chmod(0o4755)
    rejects = ["download", "1", "rejects", "--format", "jsonl"]
    shown = await cli(*rejects, "-o", "-")
    again = await cli(*rejects, "-o", "link.csv", "--force")
    assert (again.exit_code, again.stdout) == (
        0,
        f"saved link.csv ({len(shown.stdout.encode()):,} bytes)\n",
    )
    found = mine.stat()
    assert (found.st_ino, found.st_nlink, oct(found.st_mode & 0o7777)) == (inode, 2, "0o755")
    assert (mine.read_text(), (here / "other.csv").read_text()) == (shown.stdout, shown.stdout)


async def test_a_file_with_one_name_is_still_replaced(cli: Cli, tmp_path: Path, here: Path) -> None:
    await completed_run(tmp_path)
    mine = here / "mine.csv"
    mine.write_text("old\n")
    inode = mine.stat().st_ino
    forced = await cli(*CSV, "-o", "mine.csv", "--force")
    assert (forced.exit_code, mine.read_text(), mine.stat().st_nlink) == (0, RESULTS_CSV, 1)
    assert mine.stat().st_ino != inode


async def test_a_hard_link_under_the_apis_name_is_replaced_not_written_into(
    cli: Cli, tmp_path: Path, here: Path
) -> None:
    """As a symbolic link there is never followed: a name the API gave is replaced itself."""
    await completed_run(tmp_path)
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("not yours\n")
    os.link(elsewhere, here / "pipeline-1-run-1-results.csv")
    forced = await cli(*CSV, "--force")
    assert forced.exit_code == 0
    assert (here / "pipeline-1-run-1-results.csv").read_text() == RESULTS_CSV
    assert (elsewhere.read_text(), elsewhere.stat().st_nlink) == ("not yours\n", 1)


class _CutOff(httpx.SyncByteStream):
    """A body the network cuts after its first bytes."""

    def __iter__(self) -> Iterator[bytes]:
        yield RESULTS_CSV.encode()[:40]
        raise httpx.ReadError("connection reset by peer")


async def test_a_download_cut_off_leaves_a_linked_file_as_it_was(
    cli: Cli, transport: AppTransport, tmp_path: Path, here: Path
) -> None:
    await completed_run(tmp_path)
    mine = here / "mine.csv"
    mine.write_text("keep me\n")
    os.link(mine, here / "other.csv")

    def cut_off(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/output"):
            return None
        return httpx.Response(200, headers={"content-type": "text/csv"}, stream=_CutOff())

    transport.before = cut_off
    cut = await cli(*CSV, "-o", "mine.csv", "--force")
    assert (cut.exit_code, cut.stdout, cut.stderr) == (
        3,
        "",
        "error: cannot reach the API at http://cli.test: connection reset by peer; start it with "
        "`make up` (or `pipeline up`) or set PIPELINE_API_URL\n",
    )
    assert (mine.read_text(), (here / "other.csv").read_text()) == ("keep me\n", "keep me\n")
    assert names(here) == ["mine.csv", "other.csv"]
