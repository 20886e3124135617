"""A run whose PYTHONPATH would have a cold start import another copy of a module the zygote has
already imported starts cold, and its output says why. A real zygote (from test_warm_start), no
stack; tests/e2e/test_warm_env.py runs a deployment's PYTHONPATH warm on the real stack."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from app.pipeline.launcher import SOCKET_ENV
from tests.e2e.test_warm_start import zygote

__all__ = ["zygote"]  # the module's zygote fixture, shared


def test_a_pythonpath_shadowing_a_preloaded_module_starts_the_run_cold(
    zygote: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "polars.py").write_text("")  # the zygote imported the real one
    imported = importlib.util.find_spec("polars")
    assert imported is not None
    env = {**os.environ, SOCKET_ENV: zygote[1], "PYTHONPATH": str(tmp_path / "lib")}
    env["PREFECT__FLOW_RUN_ID"] = "not-a-uuid"

    launcher = subprocess.Popen(
        [sys.executable, "-m", "app.pipeline.launcher"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = launcher.communicate(timeout=120)

    assert output.startswith(
        "warm start unavailable (the zygote cannot start this run as a cold start would: its "
        f"PYTHONPATH finds module 'polars' at {tmp_path}/lib/polars.py, not where this worker "
        f"imported it ({imported.origin})); starting the flow run cold\n"
    )
    assert "Invalid flow run id. Received arguments: ['" in output  # Prefect's own engine
    assert zygote[0].poll() is None  # and the zygote serves the next run
