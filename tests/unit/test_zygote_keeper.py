"""What the worker's stop may conclude from its zygote's end (app/pipeline/warm_start/zygote_keeper.py): the
runs it took are handed back only when no process that could run them can be left."""

import signal
import subprocess
import sys
from pathlib import Path

from app.pipeline.warm_start.zygote_keeper import ZygoteKeeper

# a zygote's stand-in: asked to stop (SIGTERM), it exits 0, as the zygote's handler does
ZYGOTE = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _zygote() -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdout=subprocess.PIPE)
    assert process.stdout is not None
    with process.stdout:
        assert process.stdout.readline() == b"ready\n"
    return process


def test_a_zygote_asked_to_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    keeper = ZygoteKeeper(_zygote(), tmp_path / "zygote" / "zygote.sock")
    assert keeper.stop() is True
    assert keeper.current.returncode == 0


def test_a_zygote_killed_just_before_the_stop_may_have_left_its_runs(tmp_path: Path) -> None:
    """Killed (the OOM killer) as the worker stopped, before its keeper saw it die: its runs are
    stopped by the kernel's parent-death signal and killed seconds later, so they may still run.
    The stop said none could (its keeper had not dated the death), and the worker handed their
    flow runs back to Prefect while they might still start."""
    zygote = _zygote()
    keeper = ZygoteKeeper(zygote, tmp_path / "zygote" / "zygote.sock")
    zygote.send_signal(signal.SIGKILL)
    assert keeper.stop() is False
    assert zygote.returncode == -signal.SIGKILL
