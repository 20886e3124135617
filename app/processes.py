"""A child process the local stack (app/devstack.py) starts: in a session of its own, so that
stopping it stops everything it started, and only that."""

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import IO

STOP_GRACE_SECONDS = 10.0  # `prefect worker start` may ignore SIGTERM: SIGKILL after this


@dataclass
class Process:
    """One child process the stack started, in a session of its own so its children stop with it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; only this process's group is signalled."""
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait()
        self._signal(signal.SIGKILL)  # anything the process left behind in its group
        self.log.close()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)
