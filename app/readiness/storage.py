"""The checks of what the service keeps itself: its database, migrated, and its data directory.
They look without creating anything: a mistyped path must not become a new, empty place."""

import asyncio
import shlex
import shutil
import tempfile
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError

from app.config import PROJECT_ROOT, get_settings
from app.db import get_engine
from app.readiness.check import Check, hidden
from app.shown import shown_database_url

DATABASE_CHECK_SECONDS = 5.0  # a database that accepts connections and never answers is down


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file DATABASE_URL names, when it does not exist: connecting would create it
    and its directory, and a mistyped path would then pass for an empty database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # the connection attempt says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def migrate_fix() -> str:
    """The command that migrates this process's database. `make migrate` alone migrates the
    SQLite file of `make up`'s state directory (var/ unless STATE_DIR): a SQLite database is
    named in it; a server's URL may carry a password, so it is not printed."""
    url = shown_database_url(get_settings().database_url)
    if url.startswith("sqlite"):
        return f"run `DATABASE_URL={shlex.quote(url)} make migrate` (alembic upgrade head)"
    return "run `make migrate` with this DATABASE_URL set (alembic upgrade head)"


async def database_checks() -> list[Check]:
    """The database answers, and its schema is this code's."""
    url = shown_database_url(get_settings().database_url)
    if (missing := _missing_sqlite_file(get_settings().database_url)) is not None:
        return [
            Check(
                "database",
                False,
                f"{url}: file does not exist",
                "set DATABASE_URL to the database file's path in every process; or, for a new "
                f"database there, run `DATABASE_URL={shlex.quote(url)} make migrate` (it creates "
                f"{missing})",
            )
        ]
    try:
        async with asyncio.timeout(DATABASE_CHECK_SECONDS), get_engine().connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:
        reason = (
            f"no answer within {DATABASE_CHECK_SECONDS:g} s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {hidden((str(exc).splitlines() or [''])[0])[:200]}"
        )
        return [
            Check(
                "database",
                False,
                f"{url}: {reason}",
                "check DATABASE_URL and that the database server is running; then " + migrate_fix(),
            )
        ]
    return [Check("database", True, f"{url} reachable"), migrations_check(current)]


def migrations_check(current: str | None) -> Check:
    """The database's revision against this code's migrations: behind (migrate), or one they do
    not have (newer code migrated it: `make migrate` cannot help)."""
    scripts = ScriptDirectory.from_config(Config(str(Path(PROJECT_ROOT) / "alembic.ini")))
    head = scripts.get_current_head()
    if current == head:
        return Check("migrations", True, f"at revision {current}, latest is {head}")
    if current is not None and current not in {rev.revision for rev in scripts.walk_revisions()}:
        return Check(
            "migrations",
            False,
            f"at revision {current}, which this code's migrations (latest {head}) do not have: "
            "the database is newer than this code",
            "deploy the newer code that migrated it; or, to run this code, downgrade the database "
            f"with that newer code first (`alembic downgrade {head}` in its checkout)",
        )
    return Check(
        "migrations",
        False,
        f"at revision {current}, latest is {head}",
        migrate_fix(),
    )


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"


def _data_dir_check() -> Check:
    settings = get_settings()
    path = settings.data_dir
    elsewhere = (
        "set PIPELINE_DATA_DIR, in every process, to a directory the API and workers can write"
    )
    try:
        there = next(p for p in (path, *path.parents) if p.exists())  # the root always exists
    except OSError as exc:  # a parent the user cannot search (EACCES): exists() raises
        fix = f"make every directory above {path} searchable by the API's and workers' user, or {elsewhere}"
        return Check("data_dir", False, f"{path} cannot be reached ({exc.strerror})", fix)
    if not there.is_dir():
        why = "is a file" if there == path else f"cannot be made: {there} is a file"
        return Check("data_dir", False, f"{path} {why}", elsewhere)
    try:
        with tempfile.TemporaryFile(dir=there):
            pass
    except OSError as exc:
        why = (
            f"{path} is not writable"
            if there == path
            else f"{path} does not exist, and cannot be made: {there} is not writable"
        )
        fix = f"make {there} writable by the user of the API and workers, or {elsewhere}"
        return Check("data_dir", False, f"{why} ({exc.strerror})", fix)
    free = shutil.disk_usage(there).free
    made = "" if there == path else f" (made on first use, in {there})"
    detail = f"{path} writable{made}, {_gib(free)} free"
    if free >= settings.max_upload_bytes:
        return Check("data_dir", True, detail)
    return Check(
        "data_dir",
        True,
        f"{detail}: less than one upload may take ({_gib(settings.max_upload_bytes)}, "
        "PIPELINE_MAX_UPLOAD_BYTES)",
        "free space on its disk, or set PIPELINE_DATA_DIR to a larger one in every process, "
        "before uploads and runs fail writing their files",
        warning=True,
    )


async def data_dir_check() -> Check:
    """PIPELINE_DATA_DIR (every run's files, uploads) is writable, or can be made, with room."""
    return await asyncio.to_thread(_data_dir_check)
