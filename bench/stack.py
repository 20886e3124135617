"""The benchmarks' stacks: the same processes `make up` starts, in a directory of their own."""

import os
import socket
from contextlib import ExitStack
from pathlib import Path

from app.stack.topology import Stack
from tests.support.postgres import PostgresCluster, create_database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(exits: ExitStack) -> tuple[PostgresCluster, dict[str, str]]:
    """A throwaway cluster, removed by `exits`, and the environment that points a stack at it."""
    cluster = PostgresCluster()
    cluster.start()
    exits.callback(cluster.remove)
    return cluster, {
        "DATABASE_URL": create_database(cluster.url, "pipelines"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": create_database(
            cluster.url, "prefect", extensions=("pg_trgm",)
        ),
    }


def start_stack(
    root: Path,
    extra_env: dict[str, str],
    exits: ExitStack,
    *,
    workers: int = 1,
    worker_limit: int = 4,
    postgres: bool = False,
) -> Stack:
    """A whole stack under `root` (SQLite, or a throwaway PostgreSQL cluster), stopped by `exits`."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DD_")},
        "DATABASE_URL": f"sqlite+aiosqlite:///{root / 'pipelines.db'}",
        "PIPELINE_DATA_DIR": str(root / "data"),
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **extra_env,
    }
    if postgres:
        env.update(start_postgres(exits)[1])
    stack = Stack(
        env=env,
        prefect_port=free_port(),
        api_port=free_port(),
        workers=workers,
        worker_limit=worker_limit,
        state_dir=root,
        log_dir=root / "logs",
    )
    stack.start()
    exits.callback(stack.stop)
    return stack
