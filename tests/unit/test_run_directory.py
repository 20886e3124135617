"""Only a run's first stage makes its directory: a later write into a run directory that was
removed (its pipeline deleted) fails instead of making it again; a removal renames it first."""

import shutil
from pathlib import Path

import polars as pl
import pytest

from app.pipeline import store, work
from app.pipeline.store import RunFiles, sink


def _tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_a_write_after_the_run_directory_was_removed_does_not_make_it_again(
    tmp_path: Path,
) -> None:
    files = RunFiles(tmp_path / "runs" / "7")
    work.generate(files, record_count=4, seed=1, batch_rows=4)
    work.ingest(files)
    shutil.rmtree(files.root)  # its pipeline deleted while the flow-run process still runs

    with pytest.raises(FileNotFoundError):
        sink(pl.LazyFrame({"id": [1]}), files.processed)
    with pytest.raises(FileNotFoundError):
        work.publish(tmp_path / "transformed.parquet", files.results)
    assert _tree(tmp_path) == ["runs"]


def test_generate_makes_the_run_directory_and_starts_it_afresh(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "runs" / "7")
    files.root.mkdir(parents=True)
    (files.root / "rejects.parquet").write_bytes(b"an earlier attempt's")

    assert work.generate(files, record_count=3, seed=1, batch_rows=2) == work.StageOutput(3, 3)
    assert _tree(tmp_path) == [
        "runs",
        "runs/7",
        "runs/7/raw",
        "runs/7/raw/part-00000.parquet",
        "runs/7/raw/part-00001.parquet",
    ]


def test_removing_renames_the_directory_away_before_deleting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a stage writes by the run's path after the rename cannot land in the half-deleted
    directory: the path no longer leads to it."""
    files = RunFiles(tmp_path / "7")
    files.raw.mkdir(parents=True)
    (files.raw / "part-00000.parquet").write_bytes(b"x")
    seen: list[list[str]] = []

    def rmtree(path: Path, ignore_errors: bool = False) -> None:
        seen.append([Path(path).name[: len(".removing-7-")], str(files.root.exists())])
        seen.append(_tree(Path(path)))
        deleting(path, ignore_errors=ignore_errors)

    deleting = store.shutil.rmtree
    monkeypatch.setattr(store.shutil, "rmtree", rmtree)
    store.remove_run_directory(files.root)
    store.remove_run_directory(files.root)  # gone already: nothing to do

    assert seen == [[".removing-7-", "False"], ["raw", "raw/part-00000.parquet"]]
    assert _tree(tmp_path) == []
