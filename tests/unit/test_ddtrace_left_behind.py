"""The exit that leaves ddtrace behind (an agent that does not answer, app/observability/at_exit.py)
took its periodic threads out of ddtrace's map so that none is joined. A thread ending meanwhile
(ddtrace's SIGTERM handler stops its writer; uvicorn's shutdown goes on) then failed to remove
itself and printed `KeyError: <its id>` into the API's log as `make down` stopped it."""

import subprocess
import sys

from app.config import PROJECT_ROOT

LEFT_BEHIND = """
import time
from ddtrace.internal import _threads
from ddtrace.trace import tracer
from app.observability.at_exit import _leave_ddtrace_behind

ending = _threads.PeriodicThread(0.01, lambda: None, name="ending-meanwhile")
ending.start()
running = _threads.PeriodicThread(0.01, lambda: None, name="running-at-exit")
running.start()
time.sleep(0.05)
_leave_ddtrace_behind(tracer)
ending.stop()
ending.join()
time.sleep(0.1)
print("left behind", flush=True)
"""


def test_a_thread_left_behind_ends_and_the_exit_joins_none() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", LEFT_BEHIND],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # the exit's own join of `running` would wait for it: a hang is pytest-timeout's
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "left behind\n", "")
