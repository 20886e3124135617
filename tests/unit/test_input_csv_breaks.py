"""CSV files whose errors named no line or the wrong one: lines ending in a lone CR (old Mac) and
a quote left open, at the upload's check and at the run's conversion (app/pipeline/input_files/csv_lines.py,
inputs.py); and the fix an input_path of unknown format is told."""

from pathlib import Path

import polars as pl
import pytest

from app.pipeline.input_files import inputs

HEADER = "id,name,category,value,quantity,is_active,created_at"
ROW1 = "1,a,A,20,1,true,2026-01-01T00:00:00"
ROW2 = "2,b,B,30,2,false,2026-01-02T00:00:00"
LONE_CR = (
    "ends in a lone CR (old Mac line endings), which is no line break here; save the file with "
    "LF or CRLF line endings"
)
NEVER_CLOSED = (
    "a quoted value opens here and is never closed (it runs on to the end of the file), so its "
    "record has"
)
OPEN_QUOTE = 'close the quote, or double a quote inside a quoted value ("")'


def _refusals(tmp_path: Path, text: str) -> tuple[str, str]:
    """What the upload's check and the run's conversion say of a CSV file of `text`."""
    source = tmp_path / "in.csv"
    source.write_bytes(text.encode())
    with pytest.raises(inputs.InputError) as checked:
        inputs.check(source, "csv", tmp_path)
    with pytest.raises(inputs.InputError) as converted:
        inputs.convert(source, "csv", tmp_path / "raw" / "part-00000.parquet")
    return str(checked.value), str(converted.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # was "missing required columns: created_at; the file's columns are … 'created_at\r1'"
        (f"{HEADER}\r{ROW1}\r{ROW2}\r", 1),
        # was "not a readable csv file (found more fields than defined in 'Schema')"
        (f"{HEADER}\n{ROW1}\r{ROW2}\r", 2),
        (f"{HEADER}\r\n{ROW1}\r\n{ROW2}\r3,c,C,30,2,false,2026-01-03\r\n", 3),
        # a CR inside a quoted value is a line of it, not the record's end
        (f'{HEADER}\n1,"a\rb",A,20,1,true,2026-01-01\n{ROW2}\r3,c,C,30,2,false,2026-01-03\n', 4),
    ],
)
def test_lines_ending_in_a_lone_cr_are_named_with_the_fix(
    tmp_path: Path, text: str, line: int
) -> None:
    assert _refusals(tmp_path, text) == (
        f"file: line {line}: {LONE_CR}",
        f"input_path: line {line}: {LONE_CR}",
    )


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_cr_inside_a_quoted_value_is_read_as_sent(tmp_path: Path, ending: str) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(ending.join([HEADER, '1,"a\rb",A,20,1,true,2026-01-01', ROW2, ""]).encode())
    assert inputs.check(source, "csv", tmp_path) == 2
    dest = tmp_path / "raw" / "part-00000.parquet"
    assert inputs.convert(source, "csv", dest) == 2
    assert pl.read_parquet(dest)["name"].to_list() == ["a\rb", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # was blamed on "line 3: 2 fields where the header has 7"
        (
            f'{HEADER}\n1,"a,A,20,1,true,2026-01-01\n{ROW2}\n',
            f"line 2: {NEVER_CLOSED} 2 fields where the header has 7; {OPEN_QUOTE}",
        ),
        (
            f'{HEADER}\n{ROW1}\n2,"b,B,30,2,false,2026-01-02\n{ROW1}\n{ROW2}\n',
            f"line 3: {NEVER_CLOSED} 2 fields where the header has 7; {OPEN_QUOTE}",
        ),
        # a value opened at the end of a complete record: one field too many
        (
            f'{HEADER}\n{ROW1},"x\n{ROW2}\n',
            f"line 2: {NEVER_CLOSED} 8 fields where the header has 7; {OPEN_QUOTE}",
        ),
        # the value opens on the record's second line
        (
            f'{HEADER}\n1,"x\ny",A,20,1,"true,2026-01-01\n{ROW2}\n',
            f"line 3: {NEVER_CLOSED} 6 fields where the header has 7; {OPEN_QUOTE}",
        ),
    ],
)
def test_a_quote_left_open_is_named_on_the_line_it_opens(
    tmp_path: Path, text: str, message: str
) -> None:
    assert _refusals(tmp_path, text) == (f"file: {message}", f"input_path: {message}")


def test_a_record_over_two_lines_that_is_short_keeps_its_message(tmp_path: Path) -> None:
    """A quoted value closed on a later line may well be text: the record is short, named by the
    lines it is on (the file's quotes are even, so none was left open)."""
    text = f'{HEADER}\n1,"two\nlines",A,20,1,true\n{ROW2}\n'
    message = (
        "lines 2-3: 6 fields where the header has 7; write a missing value as nothing between two "
        "commas (,,)"
    )
    assert _refusals(tmp_path, text) == (f"file: {message}", f"input_path: {message}")


NOTE = '"leave it at the back door,\nnext to the shed\n(ring twice)"'  # a value over three lines


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (f"{ROW2},{NOTE},x", "9 fields where the header has 8; quote values that contain commas"),
        (
            f"2,b,B,30,2,false,{NOTE}",
            "7 fields where the header has 8; write a missing value as nothing between two commas "
            "(,,)",
        ),
    ],
    ids=["too many fields", "too few fields"],
)
def test_a_bad_record_over_several_lines_is_named_from_the_line_it_starts_on(
    tmp_path: Path, record: str, problem: str
) -> None:
    """It was named by its last line ('line 5: …'): a person opening the file there landed in the
    middle of its note, not on the record."""
    text = f"{HEADER},note\n{ROW1},\n{record}\n3,c,C,30,2,false,2026-01-03T00:00:00,\n"
    assert text.splitlines()[2].startswith("2,b,")  # line 3, where the bad record starts
    assert _refusals(tmp_path, text) == (
        f"file: lines 3-5: {problem}",
        f"input_path: lines 3-5: {problem}",
    )


def test_an_input_path_of_unknown_format_is_told_to_rename_it() -> None:
    """It was told to 'send format=csv|jsonl|parquet', which the JSON body refuses."""
    with pytest.raises(inputs.InputError) as error:
        inputs.format_of("exports/data.txt", field="input_path")
    assert str(error.value) == (
        "input_path: cannot tell the format of 'exports/data.txt': rename the file to end in "
        ".csv, .jsonl or .parquet (optionally .gz, .bz2 or .xz)"
    )


def test_a_stray_quote_is_named_before_a_cr_inside_a_quoted_value(tmp_path: Path) -> None:
    """A quote inside an unquoted value flipped the lone-CR scan's idea of what is quoted: the CR
    inside a later quoted value was blamed as an old Mac line ending."""
    path = tmp_path / "in.csv"
    path.write_bytes(
        b"id,name,category,value,quantity,is_active,created_at\n"
        b'1,12" pizza,A,20,1,true,2026-01-01\n'
        b'2,"b\rc",B,20,1,true,2026-01-01\n'
    )
    with pytest.raises(inputs.InputError) as raised:
        inputs.check(path, "csv", tmp_path / "scratch")
    assert str(raised.value) == (
        'file: line 2: a " inside a value that is not quoted; quote the value and double the '
        'quote inside it: "12"" pizza"'
    )
