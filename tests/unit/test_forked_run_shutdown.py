"""What a forked run's output keeps of asyncio.run()'s shutdown (app/pipeline/warm_start/forked_run.py): the
cancel Prefect's engine ends the flow's task with is left out, any other exception is not. The
sequence is Prefect 3.8.8's on a cancel: SIGTERM raises TerminationSignal out of the loop's
select(), asyncio.run() cancels the task, the task ends with TerminationSignal."""

import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT

SHUTDOWN = (
    "import asyncio, logging, os, signal, sys, threading\n"
    "from prefect.exceptions import TerminationSignal\n"
    "from app.pipeline.warm_start.forked_run import _quiet_stop_at_loop_shutdown\n"
    "logging.basicConfig(format='%(name)s: %(message)s')\n"
    "_quiet_stop_at_loop_shutdown()\n"
    "def stop(signum, frame):\n"
    "    raise TerminationSignal(signal=signum)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "ends_with = {'stop': TerminationSignal(signal=15), 'bug': RuntimeError('a bug')}[sys.argv[1]]\n"
    "async def flow():\n"
    "    try:\n"
    "        await asyncio.sleep(30)\n"
    "    except asyncio.CancelledError as exc:\n"
    "        raise ends_with from exc\n"
    "threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()\n"
    "try:\n"
    "    asyncio.run(flow())\n"
    "except TerminationSignal:\n"
    "    print('terminated', file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    ("ends_with", "first_lines"),
    [
        ("stop", ["terminated"]),
        ("bug", ["asyncio: unhandled exception during asyncio.run() shutdown"]),
    ],
)
def test_only_the_stop_is_left_out_of_the_shutdown(ends_with: str, first_lines: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SHUTDOWN, ends_with],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stderr.splitlines()[:1] == first_lines
    assert ("Traceback" in result.stderr, result.stderr.endswith("terminated\n")) == (
        ends_with == "bug",
        True,
    )
