"""The five stages run on an input file as a run's tasks run them, without Prefect."""

from pathlib import Path

from app.pipeline import work
from app.pipeline.store import RunFiles


def run_stages_on(run_id: int, source: Path, fmt: str) -> RunFiles:
    """Run `run_id`'s five stages on `source` (of format `fmt`); its files."""
    files = RunFiles.for_run(run_id)
    work.run_all(files, record_count=0, seed=1, batch_rows=10, source=work.InputSource(source, fmt))
    return files
