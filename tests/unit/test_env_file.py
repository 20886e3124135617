"""Which .env every process reads: the project's, or the one PIPELINE_ENV_FILE names — the tests'
is empty, so a developer's .env (their database, their data directory) never reaches them."""

import os
import subprocess
import sys
from pathlib import Path

from app.config import PROJECT_ROOT, get_settings


def test_the_tests_read_no_developer_s_env() -> None:
    assert Path(os.environ["PIPELINE_ENV_FILE"]).read_text() == ""
    assert get_settings().model_config["env_file"] == Path(os.environ["PIPELINE_ENV_FILE"])


def test_pipeline_env_file_names_the_env_read(tmp_path: Path) -> None:
    (tmp_path / "other.env").write_text("PIPELINE_MAX_RECORD_COUNT=1234\n")
    env = {name: value for name, value in os.environ.items() if name != "PIPELINE_MAX_RECORD_COUNT"}
    read = subprocess.run(
        [sys.executable, "-c", "from app.config import get_settings; "
         "print(get_settings().max_record_count)"],
        env={**env, "PIPELINE_ENV_FILE": str(tmp_path / "other.env")},
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert read.stdout.strip() == "1234"
