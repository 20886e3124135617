"""The stage work functions on small files (exact values), input files, and the pipeline's
outputs against the hand-written one-query anchor of bench/data.py on 100k records."""

import gzip
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from prefect.states import Failed

from app.pipeline import flows, generator, stages, work
from app.pipeline.claim import RunRef
from app.pipeline.flows import _input_source, generate_data
from app.pipeline.input_files import inputs
from app.pipeline.retries import retry_condition, retryable
from app.pipeline.store import RunFiles, count_rows, scan, sink, uploads_dir
from app.pipeline.transient import DatabaseUnreachableError
from bench.engine import engine_query, generated

HEADER = "id,name,category,value,quantity,is_active,created_at"


def test_run_all_on_generated_records_matches_the_stages_in_memory(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "run")
    outputs = work.run_all(files, record_count=10, seed=3, batch_rows=3)
    assert {
        name: (o.records_in, o.records_out, o.records_rejected) for name, o in outputs.items()
    } == {
        "generate": (10, 10, 0),
        "ingest": (10, 10, 0),
        "process": (10, 10, 0),
        "transform": (10, 10, 0),
        "export": (10, 10, 0),
    }
    assert sorted(p.name for p in files.raw.iterdir()) == [
        f"part-0000{i}.parquet" for i in range(4)
    ]
    raw = pl.concat([generator.generate_batch(1, 10, seed=3)])
    valid, _ = stages.validate(raw.lazy())
    expected = stages.transform(stages.process(valid)).collect()
    assert_frame_equal(pl.read_parquet(files.results), expected)
    assert_frame_equal(pl.read_parquet(files.summary), stages.summarize(expected.lazy()).collect())
    # the results file is the transform stage's file, published without a copy
    assert files.results.stat().st_ino == files.transformed.stat().st_ino
    # nothing rejected: the rejects file is written without a pass over the rows, same columns
    rejects = pl.read_parquet(files.rejects)
    assert rejects.height == 0
    assert rejects.schema == pl.Schema({**stages.REQUIRED_COLUMNS, stages.REJECT_REASON: pl.String})


def test_a_retried_generate_starts_from_nothing(tmp_path: Path) -> None:
    """Nor does a run whose id an earlier database used: its rejects were served as this run's."""
    files = RunFiles(tmp_path / "run")
    work.run_all(files, record_count=10, seed=1, batch_rows=2)
    assert work.generate(files, record_count=3, seed=1, batch_rows=2) == work.StageOutput(3, 3)
    assert len(list(files.raw.iterdir())) == 2
    assert sorted(p.name for p in files.root.iterdir()) == ["raw"]


def test_parts_are_read_in_the_order_they_were_written_past_99999(tmp_path: Path) -> None:
    """part-100000 sorts between part-10000 and part-10001 by name: the rows came out reordered."""
    for index in (99_999, 100_000, 10_000, 10_001, 0):
        pl.DataFrame({"index": [index]}).write_parquet(tmp_path / f"part-{index:05d}.parquet")
    assert scan(tmp_path).collect()["index"].to_list() == [0, 10_000, 10_001, 99_999, 100_000]


def test_input_file_replaces_the_generator(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(f"{HEADER},extra\n5,e,C,10,3,yes,2026-01-02 03:04:05,k\n\n6,f,D,20,1,no,,\n")
    files = RunFiles(tmp_path / "run")
    output = work.generate(
        files, record_count=999, seed=1, batch_rows=1, source=work.InputSource(source, "csv")
    )
    assert output == work.StageOutput(2, 2)  # the blank line is not a record
    assert work.ingest(files) == work.StageOutput(2, 2, 0)
    work.process(files)
    work.transform(files)
    work.export(files)
    results = pl.read_parquet(files.results)
    assert results.select("id", "is_active", "extra", "total_value", "discounted_value").rows() == [
        (5, True, "k", 30.0, 24.0),
        (6, False, None, 20.0, 19.0),
    ]


def test_duplicate_ids_found_across_hash_buckets() -> None:
    frame = pl.LazyFrame(
        {
            "id": [1, 2, 3, 2, 5, 1, 7, 3, 3],
            "name": ["a", "b", "c", "d", "e", "f", "g", "h", "i"],
            "category": ["A", "A", "Z", "A", "A", "A", "A", "A", "A"],
            "value": [10.0] * 9,
            "quantity": [1] * 9,
            "is_active": [True] * 9,
            "created_at": [generator.EPOCH] * 9,
        }
    )
    for bucket_rows in (2, 100):
        valid, rejects = stages.validate(frame, bucket_rows=bucket_rows)
        assert valid.collect()["name"].to_list() == ["a", "b", "e", "g", "h"]
        assert rejects.collect().select("name", "reject_reason").rows() == [
            ("c", "unknown category (must be A, B, C or D)"),
            ("d", "duplicate id"),
            ("f", "duplicate id"),
            ("i", "duplicate id"),
        ]


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("a.csv", None, "csv"),
        ("a.CSV.gz", None, "csv"),
        ("a.ndjson", None, "jsonl"),
        ("a.jsonl.bz2", None, "jsonl"),
        ("a.pq", None, "parquet"),
        ("a.txt", "parquet", "parquet"),
    ],
)
def test_format_of(name: str, declared: str | None, expected: str) -> None:
    assert inputs.format_of(name, declared) == expected


def test_input_dir_paths_resolve_inside_only(tmp_path: Path) -> None:
    base = tmp_path / "in"
    (base / "sub").mkdir(parents=True)
    (base / "sub" / "a.csv").write_text("x")
    (tmp_path / "out.csv").write_text("x")
    (base / "escape").symlink_to(tmp_path)
    assert inputs.resolve_under("sub/../sub/a.csv", base) == (base / "sub" / "a.csv").resolve()
    for bad, message in {
        "../out.csv": "input_path: '../out.csv' is outside PIPELINE_INPUT_DIR",
        "escape/out.csv": "input_path: 'escape/out.csv' is outside PIPELINE_INPUT_DIR",
        "sub": "input_path: 'sub' is a directory in PIPELINE_INPUT_DIR; name a file in it, "
        "such as 'sub/a.csv'",
        "sub/b.csv": "input_path: no file 'sub/b.csv' in PIPELINE_INPUT_DIR",
        "/etc/passwd": "input_path: must be relative to PIPELINE_INPUT_DIR; got '/etc/passwd'",
        # it said "must be relative to PIPELINE_INPUT_DIR", which it was
        "sub/a.csv\x00.parquet": "input_path: holds a NUL character (\\u0000); remove it: got "
        "'sub/a.csv\\x00.parquet'",
    }.items():
        with pytest.raises(inputs.InputError) as error:
            inputs.resolve_under(bad, base)
        assert str(error.value) == message


def test_compressed_input_is_converted_streaming(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl.gz"
    lines = [
        f'{{"id": {i}, "name": "n{i}", "category": "A", "value": 10, "quantity": 1, '
        f'"is_active": true, "created_at": "2026-01-01"}}'
        for i in range(1, 1001)
    ]
    source.write_bytes(gzip.compress("\n".join(lines).encode()))
    dest = tmp_path / "raw" / "part-00000.parquet"
    assert inputs.convert(source, "jsonl", dest) == 1000
    assert sorted(p.name for p in dest.parent.iterdir()) == ["part-00000.parquet"]
    assert count_rows(dest) == 1000


def test_pipeline_outputs_equal_the_one_query_anchor_on_100k(tmp_path: Path) -> None:
    """The five stages and one hand-written Polars query agree on 100k generated records."""
    records, batch_rows = 100_000, 30_000
    files = RunFiles(tmp_path / "pipeline")
    work.run_all(files, record_count=records, seed=42, batch_rows=batch_rows)
    engine_query(generated(records, batch_rows, seed=42), tmp_path / "engine")
    for name in ("output/results.parquet", "output/summary.parquet", "rejects.parquet"):
        assert_frame_equal(
            pl.read_parquet(files.root / name),
            pl.read_parquet(tmp_path / "engine" / name),
            check_exact=False,
            rel_tol=1e-9,
            abs_tol=0.0,
        )
    assert count_rows(files.results) == records


def test_the_flow_reads_input_files_only_from_allowed_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    linked_dir = tmp_path / "inputs"
    monkeypatch.setattr(
        flows, "_settings", flows._settings.model_copy(update={"input_dir": linked_dir})
    )
    outside = tmp_path / "x.csv"
    with pytest.raises(inputs.InputError) as error:
        _input_source(RunRef(1, 1, 1, input_path=str(outside), input_format="csv"))
    assert str(error.value) == (
        f"input_path: {outside} is outside the uploads directory and PIPELINE_INPUT_DIR"
    )
    inside = uploads_dir() / "abc" / "input.csv"
    ref = RunRef(1, 1, 1, input_path=str(inside), input_format="csv")
    assert _input_source(ref) == work.InputSource(inside, "csv")
    assert _input_source(RunRef(1, 1, 1)) is None


def test_a_linked_input_re_pointed_into_the_uploads_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symlink of PIPELINE_INPUT_DIR re-pointed at another pipeline's upload passed the check
    (the uploads directory was allowed for every input_path); an upload is read only where
    uploads are, a linked file only under PIPELINE_INPUT_DIR."""
    linked_dir = tmp_path / "inputs"
    linked_dir.mkdir()
    monkeypatch.setattr(
        flows, "_settings", flows._settings.model_copy(update={"input_dir": linked_dir})
    )
    upload = uploads_dir() / "someone-else" / "input.csv"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text("id\n1\n")
    (linked_dir / "mine.csv").write_text("id\n2\n")
    link = linked_dir / "link.csv"
    link.symlink_to(linked_dir / "mine.csv")
    ref = RunRef(1, 1, 1, input_path=str(link), input_format="csv")
    assert _input_source(ref) == work.InputSource(link, "csv")

    link.unlink()
    link.symlink_to(upload)  # re-pointed after the pipeline was made
    with pytest.raises(inputs.InputError) as error:
        _input_source(ref)
    assert str(error.value) == (
        f"input_path: {link} leads into the uploads directory, to another pipeline's upload; "
        "point it at a file of PIPELINE_INPUT_DIR"
    )


def test_a_linked_input_with_server_files_off_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PIPELINE_INPUT_DIR unset in the worker (a stack restarted without it): the run failed
    "outside the uploads directory and PIPELINE_INPUT_DIR", blaming a setting that was not set."""
    monkeypatch.setattr(flows, "_settings", flows._settings.model_copy(update={"input_dir": None}))
    linked = tmp_path / "inputs" / "daily.csv"
    with pytest.raises(inputs.InputError) as error:
        _input_source(RunRef(1, 1, 1, input_path=str(linked), input_format="csv"))
    assert str(error.value) == (
        f"input_path: {linked} is a server file, and reading them is off in this worker "
        "(PIPELINE_INPUT_DIR is unset): set it, in every process, to the directory the pipeline "
        "was made with"
    )


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (work.RecordsRejectedError("all rejected", work.StageOutput(3, 0, 3)), False),
        (inputs.InputError("input_path", "not a CSV file"), False),
        (OSError("disk full"), True),
        (RuntimeError("injected failure in generate on attempt 1"), True),
        (DatabaseUnreachableError("the database was unreachable for 60 s"), False),
        (ConnectionRefusedError(111, "Connect call failed"), True),
    ],
)
def test_bad_input_is_not_retried_other_errors_are(error: Exception, retried: bool) -> None:
    assert retryable(error) is retried
    assert retry_condition(generate_data, None, Failed(data=error)) is retried  # type: ignore[arg-type]


def test_a_write_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    """Rejects are served even for a failed run: a truncated file must never be among them. Nor
    a staging file: Polars' streaming writer could create it after the error was raised, past
    its removal (11 of 150 failed writes, a moment later; once in CI): 30 writes, looked at
    again after a moment."""
    values = pl.LazyFrame({"a": [1] * 500_000 + [300]})  # the last value does not fit a UInt8
    rows = values.select(pl.col("a").cast(pl.UInt8, strict=True))
    left = []
    for attempt in range(30):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        with pytest.raises(pl.exceptions.InvalidOperationError):
            sink(rows, directory / "rejects.parquet")
        left.append(directory)
    time.sleep(0.1)
    assert [path for directory in left for path in directory.iterdir()] == []
