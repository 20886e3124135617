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
from pathlib import Path

from app.pipeline.launcher import SOCKET_ENV


def main(argv: list[str]) -> None:
    path = Path(tempfile.mkdtemp(prefix="pipeline-zygote-")) / "zygote.sock"
    os.environ[SOCKET_ENV] = str(path)
    # the zygote is this process's child; after the exec below, the worker's — and it exits with it
    subprocess.Popen([sys.executable, "-m", "app.pipeline.zygote"], stdin=subprocess.DEVNULL)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    os.execvp(prefect, [prefect, "worker", "start", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
