"""The README's example input (`docs/examples/orders.csv`) runs as the README says: 8 rows go
through, 2 are rejected with the reasons shown, and its extra column is kept."""

from pathlib import Path

import polars as pl

from app.config import PROJECT_ROOT
from app.pipeline import work
from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles

EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "orders.csv"


def test_the_readme_s_example_input_runs_with_its_two_rejects(tmp_path: Path) -> None:
    assert inputs.check(EXAMPLE, "csv", tmp_path / "scratch") == 10
    files = RunFiles(tmp_path / "run")
    work.run_all(
        files, record_count=0, seed=1, batch_rows=10, source=work.InputSource(EXAMPLE, "csv")
    )
    results = pl.read_parquet(files.results).sort("id")
    assert results["id"].to_list() == [1, 2, 3, 4, 6, 7, 9, 10]
    assert results["region"].to_list() == [
        "north", "south", "east", "west", "south", "east", "north", "south"
    ]  # fmt: skip
    rejects = pl.read_parquet(files.rejects).sort("id").select("id", "reject_reason").rows()
    assert rejects == [
        ("5", "value out of range [10, 1000]"),
        ("8", "unparseable is_active (true or false)"),
    ]
