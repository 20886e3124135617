"""Readiness of what the service keeps itself, checked without creating it: a mistyped SQLite
path, and PIPELINE_DATA_DIR (writable, or can be made; free space)."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.readiness import Check, run_checks
from tests.conftest import SetSetting, use_settings
from tests.support.tmpfs import tmpfs


async def _check(name: str) -> Check:
    return {check.name: check for check in await run_checks()}[name]


async def test_a_mistyped_sqlite_path_is_reported_not_created(tmp_path: Path) -> None:
    """The check made the directory and an empty x.db (with -wal and -shm), then said `no such
    table: alembic_version`: the mistake became a database to migrate."""
    path = tmp_path / "nonexist" / "dir" / "x.db"
    before = os.environ["DATABASE_URL"]
    await use_settings(DATABASE_URL=f"sqlite:///{path}")
    try:
        database = await _check("database")
        made = os.listdir(tmp_path)
    finally:  # (the engine this disposes of makes the directory: an API's start does)
        await use_settings(DATABASE_URL=before)
    assert database == Check(
        "database",
        False,
        f"sqlite+aiosqlite:///{path}: file does not exist",
        "set DATABASE_URL to the database file's path in every process; or, for a new database "
        f"there, run `DATABASE_URL=sqlite+aiosqlite:///{path} make migrate` (it creates {path})",
    )
    assert made == []


async def test_the_data_dir_is_writable_with_its_free_space(
    tmp_path: Path, setting: SetSetting
) -> None:
    # a disk of its own: the machine's free space changes while the suite writes beside it
    with tmpfs(tmp_path / "disk", size="4g") as disk:
        setting("PIPELINE_DATA_DIR", str(disk))
        assert await _check("data_dir") == Check("data_dir", True, f"{disk} writable, 4.0 GiB free")
        assert os.listdir(disk) == []  # its probe leaves nothing behind

        # not there yet: the API makes it on first use; the check does not
        later = disk / "later" / "data"
        setting("PIPELINE_DATA_DIR", str(later))
        assert await _check("data_dir") == Check(
            "data_dir", True, f"{later} writable (made on first use, in {disk}), 4.0 GiB free"
        )
        assert os.listdir(disk) == []


async def test_little_free_space_is_a_warning_naming_the_fix(
    tmp_path: Path, setting: SetSetting
) -> None:
    setting("PIPELINE_DATA_DIR", str(tmp_path))
    upload = shutil.disk_usage(tmp_path).free + 1024**4  # one upload may take more than is free
    setting("PIPELINE_MAX_UPLOAD_BYTES", str(upload))
    data_dir = await _check("data_dir")
    assert (data_dir.ok, data_dir.warning, data_dir.detail.split(": ", 1)[1], data_dir.fix) == (
        True,
        True,
        f"less than one upload may take ({upload / 1024**3:.1f} GiB, PIPELINE_MAX_UPLOAD_BYTES)",
        "free space on its disk, or set PIPELINE_DATA_DIR to a larger one in every process, "
        "before uploads and runs fail writing their files",
    )


async def test_a_data_dir_that_cannot_be_written_fails_with_its_fix(
    tmp_path: Path, setting: SetSetting
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    setting("PIPELINE_DATA_DIR", str(a_file / "data"))
    assert await _check("data_dir") == Check(
        "data_dir",
        False,
        f"{a_file / 'data'} cannot be made: {a_file} is a file",
        "set PIPELINE_DATA_DIR, in every process, to a directory the API and workers can write",
    )
    # sysfs takes no new files, even from root (whom permission bits do not stop)
    setting("PIPELINE_DATA_DIR", "/sys/pipeline-data")
    data_dir = await _check("data_dir")
    assert (data_dir.ok, data_dir.detail.split(" (")[0], data_dir.fix) == (
        False,
        "/sys/pipeline-data does not exist, and cannot be made: /sys is not writable",
        "make /sys writable by the user of the API and workers, or set PIPELINE_DATA_DIR, in every "
        "process, to a directory the API and workers can write",
    )


CHECK_WITHOUT_OVERRIDE = """
import asyncio
from app.readiness.storage import data_dir_check
check = asyncio.run(data_dir_check())
print(check.ok, check.detail, check.fix, sep="\\n")
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_parent_the_user_cannot_search_fails_the_check_not_the_readiness() -> None:
    """Path.exists() raised PermissionError for a path under a directory the user cannot search:
    /ready lost its shape (a 503 of the error handler) and `make doctor` a traceback."""
    locked = Path(tempfile.mkdtemp(prefix="locked-"))
    locked.chmod(0)  # and the check runs without the capabilities that let root past that
    no_override = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    try:
        done = subprocess.run(
            [*no_override, sys.executable, "-c", CHECK_WITHOUT_OVERRIDE],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PIPELINE_DATA_DIR": str(locked / "sub" / "data")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        locked.chmod(0o700)
        locked.rmdir()
    assert (done.returncode, done.stderr, done.stdout.splitlines()) == (
        0,
        "",
        [
            "False",
            f"{locked / 'sub' / 'data'} cannot be reached (Permission denied)",
            f"make every directory above {locked / 'sub' / 'data'} searchable by the API's and "
            "workers' user, or set PIPELINE_DATA_DIR, in every process, to a directory the API and "
            "workers can write",
        ],
    )
