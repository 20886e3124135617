"""Input files at three more edges (app/pipeline/input_files/nul.py, inputs.py, casts.py, jsonl_text.py): a
column name holding NUL, NUL inside a Parquet list or struct, and ids with more digits than a
Float64 holds."""

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from app.pipeline import work
from app.pipeline.input_files import inputs, jsonl_text
from app.pipeline.store import RunFiles

HEADER = "id,name,category,value,quantity,is_active,created_at"
RECORD = {
    "id": 1,
    "name": "a",
    "category": "A",
    "value": 12.5,
    "quantity": 3,
    "is_active": True,
    "created_at": "2026-01-01",
}


def _line(id_: str, extra: str = "") -> str:
    return (
        f'{{"id": {id_}, "name": "a", "category": "A", "value": 12.5, "quantity": 3, '
        f'"is_active": true, "created_at": "2026-01-01"{extra}}}\n'
    )


def _run(tmp_path: Path, fmt: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run's valid rows and rejects of tmp_path/in.<fmt>, checked first as at upload."""
    source = tmp_path / f"in.{fmt}"
    inputs.check(source, fmt, tmp_path / "scratch")
    files = RunFiles(tmp_path / "run")
    work.generate(files, record_count=1, seed=1, batch_rows=1, source=work.InputSource(source, fmt))
    work.ingest(files)
    return pl.read_parquet(files.ingested), pl.read_parquet(files.rejects)


# --------------------------------------------------------------------------- NUL in a column name


def _write_named(path: Path, fmt: str, name: str) -> None:
    if fmt == "csv":
        path.write_bytes(f"{HEADER},{name}\n1,a,A,12.5,3,true,2026-01-01,x\n".encode())
    elif fmt == "jsonl":
        path.write_text(json.dumps(RECORD | {name: "x"}) + "\n")
    else:
        pl.DataFrame([RECORD | {name: "x"}]).write_parquet(path)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("csv", "line 1: column 8's name 'no\\x00te' holds a NUL character (\\u0000)"),
        (
            "jsonl",
            "column 8's name 'no\\x00te' holds a NUL character (\\u0000, or an unpaired "
            "surrogate such as \\ud800)",
        ),
        ("parquet", "column 8's name 'no\\x00te' holds a NUL character (\\u0000)"),
    ],
    ids=["csv", "jsonl", "parquet"],
)
def test_a_column_name_holding_nul_refuses_the_file(tmp_path: Path, fmt: str, message: str) -> None:
    """It was accepted: into the results' header, and the rejects' reason ("NUL character in
    no\\x00te") into the run's error, which PostgreSQL cannot store."""
    source = tmp_path / f"in.{fmt}"
    _write_named(source, fmt, "no\x00te")
    with pytest.raises(inputs.InputError) as checked:
        inputs.check(source, fmt, tmp_path / "scratch")
    assert str(checked.value) == f"file: {message}; rename the column"
    # read by path (a file under PIPELINE_INPUT_DIR replaced since): the run's generate fails
    with pytest.raises(inputs.InputError) as converted:
        work.generate(
            RunFiles(tmp_path / "run"),
            record_count=1,
            seed=1,
            batch_rows=1,
            source=work.InputSource(source, fmt),
        )
    assert str(converted.value) == f"input_path: {message}; rename the column"


def test_a_jsonl_key_with_an_unpaired_surrogate_is_a_nul_name(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(_line("1", extra=', "no\\udc00te": 1'))
    with pytest.raises(inputs.InputError) as checked:
        inputs.check(source, "jsonl", tmp_path / "scratch")
    assert str(checked.value) == (
        "file: column 8's name 'no\\x00te' holds a NUL character (\\u0000, or an unpaired "
        "surrogate such as \\ud800); rename the column"
    )


def test_a_parquet_struct_field_named_with_nul_refuses_the_file(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    pl.DataFrame([RECORD | {"meta": [{"ok": 1, "b\x00": "x"}]}]).write_parquet(source)
    with pytest.raises(inputs.InputError) as checked:
        inputs.check(source, "parquet", tmp_path / "scratch")
    assert str(checked.value) == (
        "file: column 8 ('meta') has a field named 'b\\x00', which holds a NUL character "
        "(\\u0000); rename the field"
    )


# --------------------------------------------------------------------------- NUL nested in Parquet


def test_nul_inside_a_parquet_list_or_struct_rejects_its_row(tmp_path: Path) -> None:
    """Only top-level text was looked at: these rows were accepted, NUL and all."""
    rows = 6
    pl.DataFrame(
        {
            **{name: [value] * rows for name, value in RECORD.items() if name != "id"},
            "id": range(1, rows + 1),
            "tags": [["t"], ["a\x00"], None, [None], ["t"], ["t"]],
            "meta": [{"k": "v", "n": 1}, None, {"k": "\x00", "n": 2}, {"k": None, "n": 3}]
            + [{"k": "v", "n": 1}] * 2,
            "deep": [[{"a": ["x"]}]] * 4 + [[{"a": ["x", "y\x00"]}], None],
            "pair": pl.Series([["a", "b"]] * 5 + [["c", "\x00"]], dtype=pl.Array(pl.String, 2)),
            "blob": [b"\x00"] * rows,  # bytes, not text
        }
    ).write_parquet(tmp_path / "in.parquet")
    valid, rejects = _run(tmp_path, "parquet")
    assert valid["id"].to_list() == [1, 4]
    assert rejects.select("id", "reject_reason").rows() == [
        (2, "NUL character in tags (\\u0000)"),
        (3, "NUL character in meta (\\u0000)"),
        (5, "NUL character in deep (\\u0000)"),
        (6, "NUL character in pair (\\u0000)"),
    ]
    assert rejects["deep"].to_list()[2] == [{"a": ["x", "y\x00"]}]  # kept as sent


# --------------------------------------------------------------------------- ids past a Float64


IDS = [
    "12.0000000000000001",  # 12 as a Float64
    "4503599627370496.5",  # 4503599627370496 as a Float64
    "1.00000000000000001e1",  # 10
    "13.0",
    "9007199254740990.000000000",
    "9.007199254740991e15",  # 16 digits: exact
    "14",
    "0.0000000000000001e16",  # 1: leading zeros are no digits of it (it was rejected)
    "1.000000000000000000e1",  # 10: nor are trailing ones
]


def test_jsonl_ids_with_more_digits_than_a_float_are_rejected_as_written(tmp_path: Path) -> None:
    """Polars read them as Float64s and gave their text as those: 12, 4503599627370496 and 10,
    accepted as ids no one wrote."""
    (tmp_path / "in.jsonl").write_text("".join(_line(id_) for id_ in IDS))
    valid, rejects = _run(tmp_path, "jsonl")
    assert valid["id"].to_list() == [13, 9007199254740990, 9007199254740991, 14, 1, 10]
    assert rejects.select("id", "reject_reason").rows() == [
        ("12.0000000000000001", "unparseable id"),
        ("4503599627370496.5", "unparseable id"),
        ("1.00000000000000001e1", "unparseable id"),
    ]


def test_csv_ids_with_more_digits_than_a_float_are_rejected(tmp_path: Path) -> None:
    """1.00000000000000001e1 was read through a Float64, as 10."""
    (tmp_path / "in.csv").write_text(
        f"{HEADER}\n" + "".join(f"{id_},a,A,12.5,3,true,2026-01-01\n" for id_ in IDS)
    )
    valid, rejects = _run(tmp_path, "csv")
    assert valid["id"].to_list() == [13, 9007199254740990, 9007199254740991, 14, 1, 10]
    assert rejects.select("id", "reject_reason").rows() == [
        ("12.0000000000000001", "unparseable id"),
        ("4503599627370496.5", "unparseable id"),
        ("1.00000000000000001e1", "unparseable id"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        _line("12.0000000000000001"),
        '{"\\u0069d": 12.0000000000000001, "name": "a"}\n',  # the key written escaped
        '{"name": "a",\t"id" :  -12.0000000000000001}\n',
    ],
    ids=["plain", "escaped-key", "spaced"],
)
def test_a_long_jsonl_id_sends_the_file_through_the_json_module(tmp_path: Path, line: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(_line("1.0") + line)
    schema = pl.scan_ndjson(source, infer_schema_length=None).collect_schema()
    assert jsonl_text.rounded_ids(source, schema) is True


def test_short_jsonl_ids_stay_on_polars_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the digits costs a pass over the lines, not the json module's 5x."""

    def refuse(*args: Any, **kwargs: Any) -> list[str]:
        raise AssertionError("read through Python's json module")

    monkeypatch.setattr(jsonl_text, "rewrite", refuse)
    (tmp_path / "in.jsonl").write_text(
        _line("1.0")
        + _line("2.50")
        + _line("123456789012345.6")  # 16 digits: not whole as a Float64 either
        + _line("3", extra=', "note": {"id": 1}')
    )
    valid, rejects = _run(tmp_path, "jsonl")
    assert valid["id"].to_list() == [1, 3]
    assert rejects.select("id", "reject_reason").rows() == [
        ("2.5", "unparseable id"),
        ("123456789012345.6", "unparseable id"),
    ]
