"""One unnamed column is a column named "" in every input format (a CSV header's empty name, a
JSON Lines key "", a Parquet column ""), kept through to the results and the rejects as sent. A pin
of the behaviour the README documents, not a change: two unnamed CSV columns are refused as any
repeated name is (tests/api/test_uploads.py)."""

import json
from pathlib import Path

import polars as pl
import pytest

from app.api.results import converted
from app.pipeline import work
from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles

RECORDS = [
    {"id": "1", "": "x", "name": "a", "category": "A", "value": "12.5", "quantity": "3",
     "is_active": "true", "created_at": "2026-01-01"},
    {"id": "2", "": None, "name": "b", "category": "A", "value": "12.5", "quantity": "3",
     "is_active": "maybe", "created_at": "2026-01-01"},
]  # fmt: skip


def _write(path: Path, fmt: str) -> None:
    if fmt == "csv":
        lines = [",".join(RECORDS[0])] + [
            ",".join(value or "" for value in record.values()) for record in RECORDS
        ]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    else:
        pl.DataFrame(RECORDS).write_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_one_unnamed_column_is_kept_as_sent(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / f"in.{fmt}"
    _write(source, fmt)
    assert inputs.check(source, fmt, tmp_path / "scratch") == 2
    files = RunFiles(tmp_path / "run")
    work.run_all(files, record_count=0, seed=1, batch_rows=10, source=work.InputSource(source, fmt))
    results = pl.read_parquet(files.results)
    assert results.columns[:3] == ["id", "", "name"]
    assert results.select("id", "").rows() == [(1, "x")]
    assert pl.read_parquet(files.rejects).select("id", "", "is_active").rows() == [
        ("2", None, "maybe")
    ]
    # downloaded as CSV, the header's name is empty again: read back, it is the same column
    assert converted(files.results, "csv").read_text().startswith('id,"",name,')
    again = tmp_path / "again.csv"
    again.write_bytes(converted(files.results, "csv").read_bytes())
    assert inputs.check(again, "csv", tmp_path / "scratch-again") == 1
