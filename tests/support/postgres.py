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


class PostgresCluster:
    """A cluster in a temporary directory, on a free port; stop() and start() keep its data."""

    def __init__(self) -> None:
        bin_dir = server_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found; apt-get install postgresql")
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="pipeline-pg-"))
        self.data = self.root / "data"
        self.data.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.root, self.data):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.port = free_port()
        subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data),
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

    @property
    def pid(self) -> int:
        """The postmaster's process id (the first line of its pid file), while it runs."""
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c max_connections=300"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.root / "server.log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            ),
            check=False,
            capture_output=True,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster of the caller's own, removed after: stopping it (an outage) disturbs no other
    test."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster and yield its base URL `postgresql://postgres@127.0.0.1:<port>`."""
    with own_cluster() as cluster:
        yield cluster.url


def create_database(base_url: str, name: str, *, extensions: tuple[str, ...] = ()) -> str:
    """Create database `name` (with `extensions`) and return its asyncpg URL. Under
    pytest-xdist the name carries the test process's (gw0, gw1): with TEST_DATABASE_URL they
    share one server."""
    import asyncio

    if worker := os.environ.get("PYTEST_XDIST_WORKER"):
        name = f"{worker}_{name}"

    import asyncpg

    async def _create() -> None:
        conn = await asyncpg.connect(f"{base_url}/postgres")
        try:
            # one a session before left (the databases outlive it on TEST_DATABASE_URL's server)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
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
