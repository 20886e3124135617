"""A throwaway PostgreSQL cluster for the suite: initdb + pg_ctl on a free port, removed afterwards."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_bin_dir() -> Path | None:
    """Where initdb and pg_ctl live: PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster and yield its base URL `postgresql://postgres@127.0.0.1:<port>`."""
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries not found; apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="pipeline-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, data):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
    )
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(base_url: str, name: str, *, extensions: tuple[str, ...] = ()) -> str:
    """Create database `name` (with `extensions`) and return its asyncpg URL."""
    import asyncio

    import asyncpg

    async def _create() -> None:
        conn = await asyncpg.connect(f"{base_url}/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        if extensions:
            conn = await asyncpg.connect(f"{base_url}/{name}")
            try:
                for extension in extensions:
                    await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
            finally:
                await conn.close()

    asyncio.run(_create())
    return f"{base_url.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
