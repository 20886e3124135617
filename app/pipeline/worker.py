"""`python -m app.pipeline.worker [prefect worker start options]`: a Prefect worker with a warm start.

Starts the worker's zygote (app/pipeline/zygote.py) and then becomes `prefect worker start …`
with the zygote's socket in its environment, so every flow run it starts through the launcher
forks from a process that has already imported Prefect and the pipeline. Plain
`prefect worker start` still works: its runs start cold.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.pipeline.launcher import SOCKET_ENV

ZYGOTE_READY_SECONDS = 60.0


def main(argv: list[str]) -> None:
    path = Path(tempfile.mkdtemp(prefix="pipeline-zygote-")) / "zygote.sock"
    os.environ[SOCKET_ENV] = str(path)
    # the zygote is this process's child; after the exec below, the worker's — and it exits with it
    zygote = subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.zygote"], stdin=subprocess.DEVNULL
    )
    wait_until_warm(zygote, path, ZYGOTE_READY_SECONDS)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    os.execvp(prefect, [prefect, "worker", "start", *argv])


def wait_until_warm(zygote: subprocess.Popen[bytes], path: Path, within: float) -> None:
    """Poll for runs only once the zygote listens, so the first runs start warm too. A zygote
    that dies or takes too long costs nothing but the warm start: runs then start cold."""
    deadline = time.monotonic() + within
    while not path.exists():
        if zygote.poll() is not None or time.monotonic() > deadline:
            print(f"zygote not ready ({path}); flow runs will start cold", file=sys.stderr)
            return
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1:])
