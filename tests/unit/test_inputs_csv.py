"""CSV records with too few fields, blank lines and lines of only commas: the whole-file check
(app/pipeline/input_files/inputs.py, csv_lines.py) and the conversion of the generate stage, exact values."""

from pathlib import Path

import polars as pl
import pytest

from app.pipeline import work
from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles

HEADER = "id,name,category,value,quantity,is_active,created_at"
ROW = "1,a,A,10,1,true,2026-01-01"
SHORT = "; write a missing value as nothing between two commas (,,)"


def _check(tmp_path: Path, text: str) -> int:
    source = tmp_path / "in.csv"
    source.write_text(text)
    return inputs.check(source, "csv", tmp_path / "scratch")


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(inputs.InputError) as error:
        _check(tmp_path, text)
    return str(error.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{ROW}\n2,b,B,20,2\n", f"line 3: 5 fields where the header has 7{SHORT}"),
        # quoted commas are no separators: 2 fields, though the line has 6 commas
        (f'{ROW}\n3,"a,b,c,d,e,f"\n', f"line 3: 2 fields where the header has 7{SHORT}"),
        # physical lines are counted: the record on lines 2-3 is complete
        (
            '1,"two\nlines",A,10,1,true,\n\n2,b\n',
            f"line 5: 2 fields where the header has 7{SHORT}",
        ),
        (f"{ROW}\n,,,,,\n", f"line 3: 6 fields where the header has 7{SHORT}"),
    ],
)
def test_a_record_with_too_few_fields_is_refused_naming_its_line(
    tmp_path: Path, body: str, message: str
) -> None:
    """Polars padded such a record with nulls and it was accepted."""
    assert _refused(tmp_path, f"{HEADER}\n{body}") == f"file: {message}"


def test_the_message_for_too_many_fields_is_unchanged(tmp_path: Path) -> None:
    long = f"{HEADER}\n{ROW}\n2,b,B,20,2,true,2026-01-01,x\n"
    assert _refused(tmp_path, long) == (
        "file: line 3: 8 fields where the header has 7; quote values that contain commas"
    )


def test_a_complete_record_with_empty_last_fields_is_accepted(tmp_path: Path) -> None:
    assert _check(tmp_path, f"{HEADER},note\n1,a,A,10,1,true,,\n2,b,B,10,1,,,\n") == 2


def test_lines_of_only_commas_are_records_blank_lines_are_not(tmp_path: Path) -> None:
    """A line of only commas was dropped uncounted, like a blank line: now it is a record (with no
    id, so a reject); blank lines before the header, between records, at the end and inside a
    quoted value are not records."""
    text = (
        f"\n\r\n{HEADER},note\r\n{ROW},x\r\n\r\n,,,,,,,\r\n"
        f'2,b,B,20,2,false,2026-01-02,"one\r\n\r\nthree"\r\n,,,,,,,\r\n\r\n\r\n'
    )
    assert _check(tmp_path, text) == 4
    source = tmp_path / "in.csv"
    files = RunFiles(tmp_path / "run")
    generated = work.generate(
        files, record_count=1, seed=1, batch_rows=1, source=work.InputSource(source, "csv")
    )
    assert generated == work.StageOutput(4, 4)
    assert work.ingest(files) == work.StageOutput(4, 2, 2)
    valid = pl.read_parquet(files.ingested)
    assert valid.select("id", "note").rows() == [(1, "x"), (2, "one\r\n\r\nthree")]
    rejects = pl.read_parquet(files.rejects)
    assert rejects.select("id", "note", "reject_reason").rows() == [
        (None, None, "null id"),
        (None, None, "null id"),
    ]


def test_a_file_under_the_input_directory_replaced_by_one_with_a_short_record_is_refused(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(f"{HEADER}\n{ROW}\n2,b,B,20\n")
    with pytest.raises(inputs.InputError) as error:
        inputs.convert(source, "csv", tmp_path / "raw" / "part-00000.parquet")
    assert str(error.value) == f"input_path: line 3: 4 fields where the header has 7{SHORT}"


def test_a_line_of_only_spaces_is_a_record_rejected_not_the_file(tmp_path: Path) -> None:
    """Trailing spaces at the end of a file made the whole file a 422 ("1 field where the header
    has 7"); it was, and is again, one record without an id."""
    source = tmp_path / "in.csv"
    source.write_text(f"{HEADER}\n{ROW}\n   \n")
    assert inputs.check(source, "csv", tmp_path / "scratch") == 2
    files = RunFiles(tmp_path / "run")
    generated = work.generate(
        files, record_count=1, seed=1, batch_rows=1, source=work.InputSource(source, "csv")
    )
    assert (generated, work.ingest(files)) == (work.StageOutput(2, 2), work.StageOutput(2, 1, 1))
    assert pl.read_parquet(files.rejects).select("id", "reject_reason").rows() == [
        ("   ", "null id")
    ]


def test_a_value_past_the_csv_module_s_field_limit_is_read(tmp_path: Path) -> None:
    """Python's csv module, which reads a file whose records span lines, refused a value over
    128 KiB that Polars reads: "line 2: field larger than field limit (131072)"."""
    long = "x" * 200_000
    source = tmp_path / "in.csv"
    source.write_text(f'{HEADER},note\n1,"{long}\nmore",A,10,1,true,2026-01-01,\n')
    assert inputs.check(source, "csv", tmp_path / "scratch") == 1
