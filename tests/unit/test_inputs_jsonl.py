"""JSON Lines values Polars' reader cannot read (a list where other lines have a number, 1e400, an
unpaired surrogate): the row is rejected, not the file (app/pipeline/input_files/inputs.py, jsonl_text.py)."""

from pathlib import Path

import polars as pl
import pytest

from app.pipeline import work
from app.pipeline.input_files import inputs
from app.pipeline.store import RunFiles

NUL = "(\\u0000, or an unpaired surrogate such as \\ud800)"


def _line(id_: int, value: str = "12.5", name: str = '"a"', extra: str = "") -> str:
    return (
        f'{{"id": {id_}, "name": {name}, "category": "A", "value": {value}, "quantity": 3, '
        f'"is_active": true, "created_at": "2026-01-01"{extra}}}\n'
    )


def _run(tmp_path: Path, text: str) -> tuple[int, pl.DataFrame, pl.DataFrame]:
    """The whole-file check's row count, then the valid rows and the rejects of the run."""
    source = tmp_path / "in.jsonl"
    source.write_text(text)
    rows = inputs.check(source, "jsonl", tmp_path / "scratch")
    files = RunFiles(tmp_path / "run")
    work.generate(
        files, record_count=1, seed=1, batch_rows=1, source=work.InputSource(source, "jsonl")
    )
    work.ingest(files)
    return rows, pl.read_parquet(files.ingested), pl.read_parquet(files.rejects)


@pytest.mark.parametrize(
    ("value", "reason", "id_"),
    [
        ("[12.5]", "unparseable value", "3"),
        # Polars reads this file: its ids are all JSON integers, read (and rejected) as such
        ('{"amount": 12.5}', "unparseable value", 3),
        ("1e400", "value out of range [10, 1000]", "3"),
        ("-1e400", "value out of range [10, 1000]", "3"),
        ("NaN", "value out of range [10, 1000]", "3"),
    ],
)
def test_one_value_polars_cannot_read_rejects_its_row(
    tmp_path: Path, value: str, reason: str, id_: int | str
) -> None:
    """The file was a 422 with Polars' words and no line ('failed to determine supertype of …',
    'InvalidNumber at character 19'). Read through Python's json, every value is text."""
    text = _line(1) + _line(2, "13") + _line(3, value) + _line(4, "14.25")
    rows, valid, rejects = _run(tmp_path, text)
    assert rows == 4
    assert valid.select("id", "value").rows() == [(1, 12.5), (2, 13.0), (4, 14.25)]
    assert rejects.select("id", "value", "reject_reason").rows() == [(id_, value, reason)]


def test_read_as_written_when_polars_cannot_read_the_file(tmp_path: Path) -> None:
    """Numbers keep their digits (past 2**53 too), a key first seen late is a column, a nested
    value is its JSON, true is true."""
    text = (
        _line(9007199254740993, "12.50", extra=', "note": [1, 2.5, {"k": null}]')
        + _line(2, "1e400")
        + _line(3, "20", extra=', "late": 1e2, "flag": false')
    )
    rows, valid, rejects = _run(tmp_path, text)
    assert rows == 3
    assert valid.columns[-3:] == ["note", "late", "flag"]
    assert valid.select("id", "value", "is_active", "note", "late", "flag").rows() == [
        (9007199254740993, 12.5, True, '[1, 2.5, {"k": null}]', None, None),
        (3, 20.0, True, None, "1e2", "false"),
    ]
    assert rejects.select("id", "value").rows() == [("2", "1e400")]


def test_a_line_that_is_not_json_is_named_when_polars_cannot_read_the_file(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    for bad, message in {
        '{"id": 3, "value": }': "line 3: not valid JSON (Expecting value at character 20)",
        "[1, 2]": "line 3: not a JSON object; JSON Lines has one object per line",
        '{"id": 3, "name": "\xff"}': "line 3: not UTF-8 text; save the file as UTF-8",
    }.items():
        source.write_bytes((_line(1) + _line(2, "1e400")).encode() + bad.encode("latin-1"))
        with pytest.raises(inputs.InputError) as error:
            inputs.check(source, "jsonl", tmp_path / "scratch")
        assert str(error.value) == f"file: {message}"


@pytest.mark.parametrize("blank", ["\x0c", "\x0b", " \x0c\t\r"])
@pytest.mark.parametrize("second", ["20", "1e400"], ids=["polars-reads", "python-reads"])
def test_a_line_blank_but_for_a_vertical_tab_or_form_feed_is_named(
    tmp_path: Path, blank: str, second: str
) -> None:
    """Polars fails on it ("InternalError(TapeError) at character 0"), which was the message; the
    file read by Python's json skipped it as blank (bytes.strip()) and was accepted."""
    source = tmp_path / "in.jsonl"
    source.write_bytes((_line(1) + blank + "\n" + _line(3, second)).encode())
    with pytest.raises(inputs.InputError) as error:
        inputs.check(source, "jsonl", tmp_path / "scratch")
    assert str(error.value) == (
        "file: line 2: blank but for a vertical tab or form feed, which JSON does not take as "
        "space; remove the line"
    )


@pytest.mark.parametrize(
    ("escape", "stored", "ids"),
    [
        ("\\ud800", "\x00", (1, 3)),  # Polars reads it as NUL, and the ids as integers
        ("\\udc00", "\x00", ("1", "3")),  # Polars refuses these: the file is read by Python's json
        ("\\ud800\\u0041", "\x00A", ("1", "3")),
        ("\\udbff\\udbff", "\x00\x00", ("1", "3")),
    ],
)
def test_an_unpaired_surrogate_rejects_its_row_naming_the_column(
    tmp_path: Path, escape: str, stored: str, ids: tuple[int | str, int | str]
) -> None:
    """'x\\ud800y' was stored as 'x\\x00y' and accepted; '\\udc00' made the whole file a 422."""
    text = (
        _line(1, name=f'"x{escape}y"')
        + _line(2, name='"\\ud83d\\ude00 ok"')
        + _line(3, extra=f', "note": "{escape}"')
    )
    rows, valid, rejects = _run(tmp_path, text)
    assert rows == 3
    assert valid.select("id", "name").rows() == [(2, "😀 ok")]
    assert rejects.select("id", "name", "note", "reject_reason").rows() == [
        (ids[0], f"x{stored}y", None, f"NUL character in name {NUL}"),
        (ids[1], "a", stored, f"NUL character in note {NUL}"),
    ]


def _record(id_: str, value: str = "12.5", is_active: str = "true", category: str = "A") -> str:
    return (
        f'{{"id": {id_}, "name": "a", "category": "{category}", "value": {value}, "quantity": 3, '
        f'"is_active": {is_active}, "created_at": "2026-01-01"}}\n'
    )


@pytest.mark.parametrize(
    ("text", "valid_rows", "rejected"),
    [
        (  # is_active 1 and true are both true; the ids stay numbers
            _record("1", is_active="1") + _record("2") + _record("3", category="Z"),
            [(1, 12.5, True), (2, 12.5, True)],
            [(3, 12.5, "true", "unknown category (must be A, B, C or D)")],
        ),
        (  # an id true is one rejected row; is_active 0 is false
            _record("1", is_active="0") + _record("true") + _record("3", is_active="false"),
            [(1, 12.5, False), (3, 12.5, False)],
            [("true", 12.5, "true", "unparseable id")],
        ),
        (
            _record("1", value="12.5") + _record("2", value="true") + _record("3", value="20"),
            [(1, 12.5, True), (3, 20.0, True)],
            [(2, "true", True, "unparseable value")],
        ),
    ],
    ids=["is_active 1 and true", "id 1 and true", "value 12.5 and true"],
)
def test_a_number_column_that_also_holds_true_or_false_is_read_as_text(
    tmp_path: Path,
    text: str,
    valid_rows: list[tuple[object, ...]],
    rejected: list[tuple[object, ...]],
) -> None:
    """The file was refused whole ('file: not a readable jsonl file (cannot parse 'true' (bool) as
    Int64)'): Polars types a column of 1 and true as a number. Such a column is text, the others
    keep their type."""
    rows, valid, rejects = _run(tmp_path, text)
    assert rows == 3
    assert valid.select("id", "value", "is_active").rows() == valid_rows
    assert rejects.select("id", "value", "is_active", "reject_reason").rows() == rejected


def test_a_key_given_twice_keeps_its_first_value_whichever_way_the_file_is_read(
    tmp_path: Path,
) -> None:
    """Polars keeps the first value; a file it cannot read (one 1e400 on another line) went
    through Python's json, which kept the last: the same line gave another row."""
    twice = _line(1, name='"first"', extra=', "name": "second"')
    for other in ("13", "1e400"):
        (tmp_path / other).mkdir()
        _, valid, _ = _run(tmp_path / other, twice + _line(2, other))
        assert valid.select("id", "name").rows()[0] == (1, "first"), other
