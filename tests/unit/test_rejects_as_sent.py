"""A JSON Lines input's rejected rows come back in the CSV and JSON Lines downloads as they were
sent (app/pipeline/input_files/sent_lines.py): 5000 in a column of 12.5s was 5000.0, a number in a column
of the file's own "5000" (text). Only the lines of rejected rows are read again, at ingest, and
only while the input is the file generate read."""

import gzip
import os
from pathlib import Path

import polars as pl
import pytest

from app.api.results import Format, converted
from app.pipeline import work
from app.pipeline.input_files import sent_lines
from app.pipeline.stage_stop import keep_only_rejects
from app.pipeline.store import RunFiles

UNKNOWN = "unknown category (must be A, B, C or D)"
OUT_OF_RANGE = "value out of range [10, 1000]"
FIELDS = '"name": "a", "quantity": 2, "is_active": true, "created_at": "2026-03-01T12:00:00Z"'
HEADER = "id,name,category,value,quantity,is_active,created_at"


def line(id_: int, value: str = "12.5", category: str = "A", extra: str = "") -> str:
    return f'{{"id": {id_}, "category": "{category}", "value": {value}, {FIELDS}{extra}}}'


def rejected(sent: str, reason: str) -> str:
    """A line of the JSON Lines download: the line as sent, its reject_reason added."""
    return f'{sent[:-1]}, "reject_reason": "{reason}"}}\n'


def run(tmp_path: Path, content: bytes, name: str = "in.jsonl") -> RunFiles:
    """generate and ingest, as the run's tasks call them, on `content` as the file `name`."""
    source = tmp_path / name
    source.write_bytes(content)
    files = RunFiles(tmp_path / "run")
    work.generate(
        files, record_count=0, seed=1, batch_rows=10, source=work.InputSource(source, "jsonl")
    )
    work.ingest(files)
    return files


def download(files: RunFiles, fmt: Format) -> str:
    """The rejects as GET …/rejects?format=`fmt` sends them."""
    return converted(files.rejects, fmt).read_text(encoding="utf-8")


SEVEN = line(7, category="Z", extra=', "amount": 5000')
EIGHT = line(8, value="2000", extra=', "amount": 12.50, "note": "5000"')
NINE = line(9, value="2.0e3", extra=', "amount": -0, "note": [1, 2.0]')
AMOUNTS = [
    line(1, extra=', "amount": 12.5'),
    SEVEN,
    EIGHT,
    NINE,
    line(10, extra=', "amount": 1E+2'),
]


def test_rejects_come_back_with_the_numbers_and_types_sent(tmp_path: Path) -> None:
    files = run(tmp_path, "".join(f"{sent}\n" for sent in AMOUNTS).encode())
    assert download(files, "jsonl") == (
        rejected(SEVEN, UNKNOWN) + rejected(EIGHT, OUT_OF_RANGE) + rejected(NINE, OUT_OF_RANGE)
    )
    assert download(files, "csv") == (
        "id,category,value,name,quantity,is_active,created_at,amount,note,reject_reason\n"
        f'7,Z,12.5,a,2,true,2026-03-01T12:00:00Z,5000,,"{UNKNOWN}"\n'
        f'8,A,2000,a,2,true,2026-03-01T12:00:00Z,12.50,5000,"{OUT_OF_RANGE}"\n'
        f'9,A,2.0e3,a,2,true,2026-03-01T12:00:00Z,-0,"[1, 2.0]","{OUT_OF_RANGE}"\n'
    )
    # the rejects file itself is as it was: its types, no column of the pipeline's own
    stored = pl.read_parquet(files.rejects)
    assert ",".join(stored.columns) == (
        "id,category,value,name,quantity,is_active,created_at,amount,note,reject_reason"
    )
    assert stored.rows() == [
        (7, "Z", 12.5, "a", 2, True, "2026-03-01T12:00:00Z", "5000", None, UNKNOWN),
        (8, "A", 2000.0, "a", 2, True, "2026-03-01T12:00:00Z", "12.5", "5000", OUT_OF_RANGE),
        (9, "A", 2000.0, "a", 2, True, "2026-03-01T12:00:00Z", "0", "[1, 2]", OUT_OF_RANGE),
    ]
    assert sorted(path.name for path in files.root.glob("*rejects*")) == [
        "rejects.csv",
        "rejects.jsonl",
        "rejects.parquet",
        "rejects.sent.parquet",
    ]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_blank_lines_and_a_byte_order_mark_leave_each_reject_its_own_line(
    tmp_path: Path, compressed: bool
) -> None:
    """Blank lines are no rows: a reject after them is matched with its line, not a neighbour's."""
    two, four = line(2, category="Z", extra=', "n": 2'), line(4, value="5000", extra=', "n": 4')
    content = f"\ufeff{line(1)}\r\n\n   \n{two}\r\n\t\n{line(3)}\n\n{four}\n".encode()
    name = "in.jsonl.gz" if compressed else "in.jsonl"
    files = run(tmp_path, gzip.compress(content) if compressed else content, name)
    assert download(files, "jsonl") == rejected(two, UNKNOWN) + rejected(four, OUT_OF_RANGE)


def test_a_byte_order_mark_alone_on_the_first_line_is_no_line(tmp_path: Path) -> None:
    one = line(1, category="Z")
    files = run(tmp_path, f"\ufeff\n{one}\n{line(2)}\n".encode())
    assert download(files, "jsonl") == rejected(one, UNKNOWN)


def test_kept_lines_written_in_many_parts_keep_the_files_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines are kept a batch at a time (memory holds one batch, whatever the file's size)."""
    monkeypatch.setattr(sent_lines, "_BATCH", 2)
    sent = [line(n, category="Z" if n % 2 else "A") for n in range(1, 12)]
    files = run(tmp_path, "".join(f"{one}\n" for one in sent).encode())
    assert download(files, "jsonl") == "".join(rejected(one, UNKNOWN) for one in sent[::2])


def test_a_file_read_as_text_comes_back_as_sent_too(tmp_path: Path) -> None:
    """1e400 has Polars' reader fail the file: it is read line by line as text
    (app/pipeline/input_files/jsonl_text.py), and its rejects were text: "id": "2", "value": "5000"."""
    files = run(
        tmp_path,
        (line(1, extra=', "big": 1e400') + "\n" + line(2, value="5000") + "\n").encode(),
    )
    assert download(files, "jsonl") == rejected(line(2, value="5000"), OUT_OF_RANGE)
    assert download(files, "csv") == (
        f"id,category,value,name,quantity,is_active,created_at,big,reject_reason\n"
        f'2,A,5000,a,2,true,2026-03-01T12:00:00Z,,"{OUT_OF_RANGE}"\n'
    )


def test_an_empty_object_comes_back_with_its_reason_alone(tmp_path: Path) -> None:
    files = run(tmp_path, (line(1) + "\n  { }  \n").encode())
    assert download(files, "jsonl") == '{"reject_reason": "null id"}\n'
    assert download(files, "csv") == (
        "id,category,value,name,quantity,is_active,created_at,reject_reason\n,,,,,,,null id\n"
    )


def test_an_input_changed_before_ingest_keeps_the_values_read(tmp_path: Path) -> None:
    """Its lines may no longer be the rows read: the rejects come back as they were read."""
    source = tmp_path / "in.jsonl"
    source.write_text(line(1) + "\n" + line(2, value="5000") + "\n")
    files = RunFiles(tmp_path / "run")
    work.generate(
        files, record_count=0, seed=1, batch_rows=10, source=work.InputSource(source, "jsonl")
    )
    source.write_text(line(2, value="6000") + "\n" + line(1) + "\n")
    os.utime(source, ns=(1, 1))
    work.ingest(files)
    assert not sent_lines.sent_path(files.rejects).exists()
    assert download(files, "jsonl") == (
        '{"id":2,"category":"A","value":5000.0,"name":"a","quantity":2,"is_active":true,'
        f'"created_at":"2026-03-01T12:00:00Z","reject_reason":"{OUT_OF_RANGE}"}}\n'
    )


def test_lines_are_kept_only_for_rejected_json_lines_rows(tmp_path: Path) -> None:
    """No rejects: the input is not read again. A CSV's text is as sent already."""
    files = run(tmp_path, (line(1) + "\n").encode())
    assert [pl.read_parquet(files.rejects).height, files.root.joinpath("input.json").exists()] == [
        0,
        True,
    ]
    assert not sent_lines.sent_path(files.rejects).exists()
    source = tmp_path / "in.csv"
    source.write_text(f"{HEADER}\n1,a,Z,5000,2,true,2026-03-01\n")
    csv_files = RunFiles(tmp_path / "csv-run")
    with pytest.raises(work.RecordsRejectedError):
        work.run_all(
            csv_files,
            record_count=0,
            seed=1,
            batch_rows=10,
            source=work.InputSource(source, "csv"),
        )
    assert sorted(path.name for path in csv_files.root.iterdir()) == [
        "ingested.parquet",
        "raw",
        "rejects.parquet",
    ]
    assert download(csv_files, "csv") == (
        f'{HEADER},reject_reason\n1,a,Z,5000,2,true,2026-03-01,"{OUT_OF_RANGE}"\n'
    )


def test_a_cancelled_run_keeps_its_rejects_lines(tmp_path: Path) -> None:
    files = run(tmp_path, (line(1) + "\n" + line(2, category="Z") + "\n").encode())
    keep_only_rejects(files)
    assert sorted(path.name for path in files.root.iterdir()) == [
        "rejects.parquet",
        "rejects.sent.parquet",
    ]
    assert download(files, "jsonl") == rejected(line(2, category="Z"), UNKNOWN)


def test_a_run_whose_every_row_is_rejected_keeps_their_lines(tmp_path: Path) -> None:
    """Ingest fails such a run (RecordsRejectedError) after writing its rejects."""
    source = tmp_path / "in.jsonl"
    source.write_text(line(1, category="Z") + "\n" + line(2, value="5000") + "\n")
    files = RunFiles(tmp_path / "run")
    with pytest.raises(work.RecordsRejectedError):
        work.run_all(
            files, record_count=0, seed=1, batch_rows=10, source=work.InputSource(source, "jsonl")
        )
    assert download(files, "jsonl") == (
        rejected(line(1, category="Z"), UNKNOWN) + rejected(line(2, value="5000"), OUT_OF_RANGE)
    )
