"""Reading input files at their edges (app/pipeline/input_files/inputs.py, jsonl_text.py, nul.py,
csv_lines.py): JSON Lines ids past 2**53 written N.0 and integers past Int64, NUL in every
format's text, and CSV records over several lines checked for too few fields."""

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from app.pipeline import work
from app.pipeline.input_files import csv_lines, inputs, jsonl_text
from app.pipeline.store import RunFiles

HEADER = "id,name,category,value,quantity,is_active,created_at"
SHORT = "; write a missing value as nothing between two commas (,,)"


def _line(id_: str, name: str = '"a"', quantity: str = "3", extra: str = "") -> str:
    return (
        f'{{"id": {id_}, "name": {name}, "category": "A", "value": 12.5, '
        f'"quantity": {quantity}, "is_active": true, "created_at": "2026-01-01"{extra}}}\n'
    )


def _run(tmp_path: Path, fmt: str) -> tuple[int, pl.DataFrame, pl.DataFrame]:
    """The whole-file check's row count of tmp_path/in.<fmt>, then the run's valid rows and
    rejects."""
    source = tmp_path / f"in.{fmt}"
    rows = inputs.check(source, fmt, tmp_path / "scratch")
    files = RunFiles(tmp_path / "run")
    work.generate(files, record_count=1, seed=1, batch_rows=1, source=work.InputSource(source, fmt))
    work.ingest(files)
    return rows, pl.read_parquet(files.ingested), pl.read_parquet(files.rejects)


# --------------------------------------------------------------------------- JSON Lines ids


def test_ids_past_2_53_written_n_point_0_are_read_as_written(tmp_path: Path) -> None:
    """Polars read 9007199254740993.0 as a Float64 and gave its text as 9007199254740992: another
    id, accepted. 9007199254740993.5 came out whole (9007199254740994), accepted too."""
    (tmp_path / "in.jsonl").write_text(
        _line("1.0")
        + _line("9007199254740993.0")
        + _line("-9007199254740995.00")
        + _line("9007199254740993.5")
        + _line("9.007199254740993e15")
        + _line("2")
    )
    rows, valid, rejects = _run(tmp_path, "jsonl")
    assert rows == 6
    assert valid["id"].to_list() == [1, 9007199254740993, -9007199254740995, 2]
    assert rejects.select("id", "reject_reason").rows() == [
        ("9007199254740993.5", "unparseable id"),
        ("9.007199254740993e15", "unparseable id"),
    ]


def test_ids_written_n_point_0_below_2_53_are_read_by_polars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a file with an id at or past 2**53 among its N.0 ones takes Python's json module."""

    def refuse(*args: Any, **kwargs: Any) -> list[str]:
        raise AssertionError("read through Python's json module")

    monkeypatch.setattr(jsonl_text, "rewrite", refuse)
    (tmp_path / "in.jsonl").write_text(_line("1.0") + _line("9007199254740991.0") + _line("3"))
    rows, valid, rejects = _run(tmp_path, "jsonl")
    assert (rows, valid["id"].to_list(), rejects.height) == (3, [1, 9007199254740991, 3], 0)


def test_integer_ids_past_int64_are_rejected_as_written(tmp_path: Path) -> None:
    """An id of more than 4300 digits made the file a 422 that blamed nesting ("line 2: not valid
    JSON (nested too deeply)"): Python's json module reads no longer integer."""
    long = "9" * 5000
    (tmp_path / "in.jsonl").write_text(
        _line("1")
        + _line(long)
        + _line("9223372036854775808")
        + _line("-9223372036854775809")
        + _line("9223372036854775807")
    )
    rows, valid, rejects = _run(tmp_path, "jsonl")
    assert rows == 5
    assert valid["id"].to_list() == [1, 9223372036854775807]
    assert rejects.select("id", "reject_reason").rows() == [
        (long, "unparseable id"),
        ("9223372036854775808", "unparseable id"),
        ("-9223372036854775809", "unparseable id"),
    ]


def test_a_quantity_past_2_53_is_out_of_range(tmp_path: Path) -> None:
    """Rounded or not, such a quantity is past 100: the verdict never depended on its digits."""
    (tmp_path / "in.jsonl").write_text(
        _line("1") + _line("2", quantity="9007199254740993.0") + _line("3", quantity="3.0")
    )
    _, valid, rejects = _run(tmp_path, "jsonl")
    assert valid.select("id", "quantity").rows() == [(1, 3), (3, 3)]
    # the ids are JSON integers, read as such: the rejected row's id is the number it was sent as
    assert rejects.select("id", "reject_reason").rows() == [(2, "quantity out of range [1, 100]")]


def test_a_nested_integer_too_long_for_python_is_named_as_such(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(_line("1") + _line("2", extra=f', "note": [{"9" * 5000}]'))
    with pytest.raises(inputs.InputError) as error:
        inputs.check(source, "jsonl", tmp_path / "scratch")
    assert str(error.value) == (
        "file: line 2: an integer of more than 4300 digits; write it in quotes, as text"
    )


# --------------------------------------------------------------------------- NUL


def test_nul_in_csv_text_rejects_its_row_naming_the_column(tmp_path: Path) -> None:
    """It was accepted, into the results and their CSV and JSON Lines downloads."""
    (tmp_path / "in.csv").write_bytes(
        f"{HEADER},note\n".encode()
        + b"1,a\x00b,A,12.5,3,true,2026-01-01,\n"
        + b"2,ok,A,12.5,3,true,2026-01-01,x\x00\n"
        + b"3,ok,A\x00,12.5,3,true,2026-01-01,\n"
        + b"4,ok,A,12.5,3,true,2026-01-01,fine\n"
    )
    rows, valid, rejects = _run(tmp_path, "csv")
    assert rows == 4
    assert valid.select("id", "note").rows() == [(4, "fine")]
    assert rejects.select("id", "name", "note", "reject_reason").rows() == [
        ("1", "a\x00b", None, "NUL character in name (\\u0000)"),
        ("2", "ok", "x\x00", "NUL character in note (\\u0000)"),
        ("3", "ok", None, "unknown category (must be A, B, C or D)"),
    ]


def test_nul_in_parquet_text_rejects_its_row_naming_the_column(tmp_path: Path) -> None:
    """It was accepted. The text inside a list or struct is looked at too (see
    test_input_names_and_digits); bytes are no text."""
    pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "name": ["a\x00b", "ok", "ok", "ok"],
            "category": ["A"] * 4,
            "value": [12.5] * 4,
            "quantity": [3] * 4,
            "is_active": [True] * 4,
            "created_at": ["2026-01-01"] * 4,
            "note": [None, "x\x00", None, None],
            "label": pl.Series([None, None, "y\x00", "z"], dtype=pl.Categorical),
            "tags": [["t"], ["t"], ["t"], ["t"]],
            "blob": [b"\x00"] * 4,  # bytes, not text
        }
    ).write_parquet(tmp_path / "in.parquet")
    rows, valid, rejects = _run(tmp_path, "parquet")
    assert rows == 4
    assert valid.select("id", "blob").rows() == [(4, b"\x00")]
    assert rejects.select("id", "name", "reject_reason").rows() == [
        (1, "a\x00b", "NUL character in name (\\u0000)"),
        (2, "ok", "NUL character in note (\\u0000)"),
        (3, "ok", "NUL character in label (\\u0000)"),
    ]


# --------------------------------------------------------------------------- CSV records over lines


def test_records_over_several_lines_are_checked_without_the_csv_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a quoted value over several lines and an empty last field, the whole file was read a
    second time by Python's csv module (1.0 s of 1.3 for 3M records)."""

    def refuse(path: Path) -> str | None:
        raise AssertionError("read by the csv module")

    monkeypatch.setattr(csv_lines, "first_bad_csv_line", refuse)
    source = tmp_path / "in.csv"
    source.write_text(
        f"{HEADER},note\n"
        '1,"two\nlines, ""quoted""",A,10,1,true,2026-01-01,\n'
        '2,"a,b,c",A,10,1,true,,"x\n\ny,z"\n'
        "3,c,A,10,1,true,2026-01-01,\n"
        '4,"""\n,,,""",A,10,1,,,\n'
        "   \n"
    )
    assert inputs.check(source, "csv", tmp_path / "scratch") == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # its second line has the commas it lacks, inside the quoted value
        ('1,"a\n,,,,,"\n', f"lines 2-3: 2 fields where the header has 7{SHORT}"),
        (
            '1,"a\nb",A,10,1,true,\n2,"c,d\ne",A\n',
            f"lines 4-5: 3 fields where the header has 7{SHORT}",
        ),
    ],
)
def test_a_short_record_over_several_lines_is_refused_naming_its_line(
    tmp_path: Path, body: str, message: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(f"{HEADER}\n{body}")
    with pytest.raises(inputs.InputError) as error:
        inputs.check(source, "csv", tmp_path / "scratch")
    assert str(error.value) == f"file: {message}"


def test_a_short_record_and_a_long_one_do_not_make_up_for_each_other(tmp_path: Path) -> None:
    """Polars refuses a file with a record too long before this is asked, but the separators are
    compared record by record, not summed over the file."""
    source = tmp_path / "in.csv"
    source.write_text(f'{HEADER}\n1,"a\nb",A,10,1,true\n2,"c\nd",A,10,1,true,x,y\n')
    assert csv_lines.short_record(source, 7) == f"lines 2-3: 6 fields where the header has 7{SHORT}"
