"""`make migrate`: `alembic upgrade head` on the database the local stack's processes are given —
the state directory's SQLite file (`STATE_DIR`, var by default) unless DATABASE_URL is set, in the
environment or .env — the one `make up` uses and `make doctor` checks."""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from app.config import PROJECT_ROOT
from app.stack import settings_check
from app.stack.env import process_env
from app.stack.topology import STATE_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make migrate", description=__doc__)
    parser.add_argument("--state-dir", type=Path, help="the stack's state directory (var)")
    # `make migrate` passes the stack's ports as it does to `make up`; a migration needs none
    parser.add_argument("--api-port", help=argparse.SUPPRESS)
    parser.add_argument("--prefect-port", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = process_env(
        os.environ,
        prefect_api_url=os.environ.get("PREFECT_API_URL", ""),  # unused by a migration
        state_dir=(args.state_dir or STATE_DIR).absolute(),
        tmp_dir=Path(tempfile.gettempdir()),
    )
    if problem := settings_check.refusal(env):  # alembic's env.py would say it in a traceback
        print(f"error: {problem}", file=sys.stderr, flush=True)
        return 1
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    return subprocess.run(alembic, cwd=PROJECT_ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
