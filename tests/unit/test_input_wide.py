"""Input files with many columns: the NUL check's query grows linearly with them (it was one
when/then chain, which Polars plans in quadratic time and memory), a file at the column limit runs
with exact results, and one past it (PIPELINE_MAX_INPUT_COLUMNS) is refused naming the fix."""

import json
from pathlib import Path

import polars as pl
import pytest

from app.pipeline import stages, work
from app.pipeline.input_files import inputs, nul
from app.pipeline.store import RunFiles
from tests.conftest import SetSetting

HEADER = "id,name,category,value,quantity,is_active,created_at"
LIMIT = 500  # PIPELINE_MAX_INPUT_COLUMNS' default
TOO_WIDE = (
    "the file has 501 columns, more than the 500 a run reads (PIPELINE_MAX_INPUT_COLUMNS); "
    "keep the 7 required columns and only the extra ones the results need"
)


def _nesting(plan: str) -> int:
    """How deeply the brackets of a query plan nest."""
    depth = deepest = 0
    for char in plan:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest


def _text_frame(columns: int) -> pl.LazyFrame:
    return pl.LazyFrame(schema={"name": pl.String, **{f"c{i}": pl.String for i in range(columns)}})


def test_the_nul_check_does_not_nest_deeper_with_more_columns() -> None:
    """One when/then link per column nested the expression 1 level deeper per column (14 levels
    for 10 columns, 304 for 300): Polars planned that in quadratic time and memory, 4 GB and 35 s
    for 3,000 columns. Side by side, the depth is the same for any number of columns."""
    narrow = nul.mark(_text_frame(10), "csv").explain(optimized=False)
    wide = nul.mark(_text_frame(300), "csv").explain(optimized=False)
    assert (_nesting(narrow), _nesting(wide)) == (6, 6)


def test_a_nul_in_the_last_of_many_columns_is_named_and_the_first_one_wins() -> None:
    names = ["name", *(f"c{i}" for i in range(300))]
    rows = [
        {**dict.fromkeys(names, "x"), "c299": "a\x00b"},
        {**dict.fromkeys(names, "x"), "name": "\x00", "c5": "\x00"},
        dict.fromkeys(names, "x"),
    ]
    marked = nul.mark(pl.LazyFrame(rows), "csv").collect()
    assert marked[stages.INPUT_PROBLEM].to_list() == [
        "NUL character in c299 (\\u0000)",
        "NUL character in name (\\u0000)",
        None,
    ]


def _wide_csv(path: Path, extra: int, rows: list[str]) -> Path:
    header = HEADER + "".join(f",c{i}" for i in range(extra))
    path.write_text("\n".join([header, *rows, ""]))
    return path


def test_a_file_of_as_many_columns_as_the_limit_runs_with_exact_results(tmp_path: Path) -> None:
    extra = LIMIT - 7
    values = [f"v{i}" for i in range(extra)]
    good = "1,a,A,20,2,true,2026-01-01T00:00:00," + ",".join(values)
    nul_last = "2,b,B,30,1,false,2026-01-02T00:00:00," + ",".join([*values[:-1], "x\x00"])
    out_of_range = "3,c,C,5,1,true,2026-01-03T00:00:00," + ",".join(values)
    source = _wide_csv(tmp_path / "wide.csv", extra, [good, nul_last, out_of_range])
    assert inputs.check(source, "csv", tmp_path) == 3
    files = RunFiles(tmp_path / "run")
    counts = work.run_all(
        files, record_count=3, seed=1, batch_rows=3, source=work.InputSource(source, "csv")
    )
    assert [(c.records_in, c.records_out, c.records_rejected) for c in counts.values()] == [
        (3, 3, 0),
        (3, 1, 2),
        (1, 1, 0),
        (1, 1, 0),
        (1, 1, 0),
    ]
    results = pl.read_parquet(files.results)
    assert results.width == LIMIT + 6  # the computed columns
    assert results.select(f"c{i}" for i in range(extra)).row(0) == tuple(values)
    assert results.select("id", "total_value", "tier", "discounted_value").rows() == [
        (1, 40.0, "basic", 36.0)
    ]
    rejects = pl.read_parquet(files.rejects).select("id", f"c{extra - 1}", "reject_reason")
    assert rejects.rows() == [
        ("2", "x\x00", f"NUL character in c{extra - 1} (\\u0000)"),
        ("3", values[-1], "value out of range [10, 1000]"),
    ]


def _one_past_the_limit(tmp_path: Path, fmt: str) -> Path:
    row = {
        "id": 1,
        "name": "a",
        "category": "A",
        "value": 20,
        "quantity": 1,
        "is_active": True,
        "created_at": "2026-01-01",
    } | {f"c{i}": "x" for i in range(LIMIT - 6)}
    path = tmp_path / f"wide.{fmt}"
    if fmt == "csv":
        pl.DataFrame([row]).write_csv(path)
    elif fmt == "jsonl":
        path.write_text(json.dumps(row) + "\n")
    else:
        pl.DataFrame([row]).write_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_file_of_one_column_more_than_the_limit_is_refused(tmp_path: Path, fmt: str) -> None:
    """Such a file was accepted whatever its width: 10,007 columns held a worker for minutes."""
    source = _one_past_the_limit(tmp_path, fmt)
    with pytest.raises(inputs.InputError) as checked:
        inputs.check(source, fmt, tmp_path)
    assert str(checked.value) == f"file: {TOO_WIDE}"
    # a file under PIPELINE_INPUT_DIR replaced since its check is refused by the run, too
    with pytest.raises(inputs.InputError) as converted:
        inputs.convert(source, fmt, tmp_path / "raw" / "part-00000.parquet")
    assert str(converted.value) == f"input_path: {TOO_WIDE}"


def test_the_limit_is_a_setting(tmp_path: Path, setting: SetSetting) -> None:
    source = _wide_csv(tmp_path / "in.csv", 2, ["1,a,A,20,1,true,2026-01-01,x,y"])
    setting("PIPELINE_MAX_INPUT_COLUMNS", "9")
    assert inputs.check(source, "csv", tmp_path) == 1
    setting("PIPELINE_MAX_INPUT_COLUMNS", "8")
    with pytest.raises(inputs.InputError) as error:
        inputs.check(source, "csv", tmp_path)
    assert str(error.value) == (
        "file: the file has 9 columns, more than the 8 a run reads (PIPELINE_MAX_INPUT_COLUMNS); "
        "keep the 7 required columns and only the extra ones the results need"
    )
