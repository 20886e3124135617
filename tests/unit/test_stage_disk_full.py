"""A stage that runs out of space in PIPELINE_DATA_DIR, on a real 20 MB tmpfs: it leaves nothing
its retry writes again (on its last attempt, nothing of the run but the rejects), so the disk it
filled has room for the next run; and which errors are the data directory's disk refusing a
write at all."""

import errno
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from app.pipeline import disk, generator, work
from app.pipeline.disk import NoSpaceError, Refusal, freeing_space, refusal
from app.pipeline.input_files import sent_lines
from app.pipeline.input_files.inputs import InputError
from app.pipeline.store import RunFiles
from tests.conftest import SetSetting
from tests.support.tmpfs import fill, tmpfs

HEADER = "id,name,category,value,quantity,is_active,created_at"
FREE_SPACE = (
    "free space there (delete pipelines you no longer need: their runs' files go with them; "
    "a lower PIPELINE_RETENTION_DAYS removes finished runs sooner) or move PIPELINE_DATA_DIR "
    "to a larger volume"
)


@pytest.fixture
def data_dir(tmp_path: Path, setting: SetSetting) -> Iterator[Path]:
    with tmpfs(tmp_path / "data") as data:
        setting("PIPELINE_DATA_DIR", str(data))
        yield data


def full(data: Path, removed: str, *, then: str = ", then retry the pipeline") -> str:
    return (
        f"PIPELINE_DATA_DIR ({data}) is out of space ([Errno 28] No space left on device); "
        f"{removed}; {FREE_SPACE}{then}"
    )


def test_a_generate_that_fills_the_disk_leaves_nothing_and_the_next_run_completes(
    data_dir: Path,
) -> None:
    files = RunFiles.for_run(1)
    with pytest.raises(NoSpaceError) as raised:
        freeing_space(
            lambda: work.generate(files, record_count=3_000_000, seed=42, batch_rows=1_000_000),
            files,
            "generate",
            last_attempt=True,
        )
    assert str(raised.value) == full(data_dir, "the run's files were removed")
    assert type(raised.value.__cause__) is pl.exceptions.ComputeError
    assert (files.root.is_dir(), list(files.root.iterdir())) == (True, [])
    outputs = work.run_all(RunFiles.for_run(2), record_count=10_000, seed=42, batch_rows=5_000)
    assert outputs["export"] == work.StageOutput(10_000, 10_000)


def test_a_stage_that_will_be_retried_keeps_what_its_retry_reads(data_dir: Path) -> None:
    files = RunFiles.for_run(1)
    work.generate(files, record_count=10_000, seed=42, batch_rows=5_000)
    parts = sorted(files.raw.iterdir())
    filler = fill(data_dir)
    with pytest.raises(NoSpaceError) as raised:
        freeing_space(lambda: work.ingest(files), files, "ingest", last_attempt=False)
    assert str(raised.value) == full(data_dir, "the ingest stage's files were removed", then="")
    assert sorted(files.root.iterdir()) == [files.raw]
    assert sorted(files.raw.iterdir()) == parts
    filler.unlink()  # space freed meanwhile: the retry reads the raw parts it kept
    assert freeing_space(lambda: work.ingest(files), files, "ingest", last_attempt=False) == (
        work.StageOutput(10_000, 10_000, 0)
    )


def test_a_last_attempt_out_of_space_keeps_only_the_rejects(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "input.csv"
    source.write_text(
        f"{HEADER}\n1,a,A,10,1,true,2026-01-01\n2,b,Q,10,1,true,2026-01-01\n"
        "3,c,B,20,2,false,2026-01-02\n"
    )
    files = RunFiles.for_run(1)
    work.generate(
        files, record_count=0, seed=1, batch_rows=1, source=work.InputSource(source, "csv")
    )
    assert work.ingest(files) == work.StageOutput(3, 2, 1)
    work.process(files)
    work.transform(files)
    fill(data_dir)
    with pytest.raises(NoSpaceError) as raised:
        freeing_space(lambda: work.export(files), files, "export", last_attempt=True)
    assert str(raised.value) == full(
        data_dir, "the run's files were removed, all but its rejects file"
    )
    assert list(files.root.iterdir()) == [files.rejects]
    rejects = pl.read_parquet(files.rejects)
    assert rejects.select("id", "reject_reason").rows() == [
        ("2", "unknown category (must be A, B, C or D)")
    ]


def test_a_last_attempt_out_of_space_keeps_the_rejected_lines_as_sent(
    data_dir: Path, tmp_path: Path
) -> None:
    """A JSON Lines input's rejected lines are kept with the rejects (app/pipeline/sent_lines):
    without them its rejects download says 5000.0 for the 5000 sent."""
    source = tmp_path / "input.jsonl"
    line = '{"id": %d, "name": "a", "category": "%s", "value": %s, "quantity": 1, '
    line += '"is_active": true, "created_at": "2026-01-01"}\n'
    source.write_text(line % (1, "A", "12.5") + line % (2, "A", "5000"))
    files = RunFiles.for_run(1)
    work.generate(
        files, record_count=0, seed=1, batch_rows=1, source=work.InputSource(source, "jsonl")
    )
    assert work.ingest(files) == work.StageOutput(2, 1, 1)
    work.process(files)
    work.transform(files)
    fill(data_dir)
    with pytest.raises(NoSpaceError):
        freeing_space(lambda: work.export(files), files, "export", last_attempt=True)
    assert sorted(files.root.iterdir()) == [files.rejects, sent_lines.sent_path(files.rejects)]
    assert sent_lines.as_sent(files.rejects).collect().to_series().to_list() == [
        (line % (2, "A", "5000")).removesuffix("}\n")
        + ', "reject_reason": "value out of range [10, 1000]"}'
    ]


def test_an_input_file_whose_conversion_fills_the_disk_is_no_bad_input(
    data_dir: Path, tmp_path: Path
) -> None:
    """inputs.convert reads a Polars error as a problem of the file (an InputError, never
    retried); one that is the disk's is out of space."""
    source = tmp_path / "input.csv"
    generator.generate_batch(1, 500_000, seed=1).write_csv(source)
    assert source.stat().st_size > 20 << 20  # more than the tmpfs holds
    files = RunFiles.for_run(1)
    with pytest.raises(NoSpaceError) as raised:
        freeing_space(
            lambda: work.generate(
                files, record_count=0, seed=1, batch_rows=1, source=work.InputSource(source, "csv")
            ),
            files,
            "generate",
            last_attempt=True,
        )
    assert str(raised.value) == full(data_dir, "the run's files were removed")
    assert type(raised.value.__cause__) is InputError
    assert list(files.root.iterdir()) == []


def test_other_failures_are_raised_as_they_are_and_leave_the_files(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "run")
    work.generate(files, record_count=10, seed=1, batch_rows=5)

    def broken() -> work.StageOutput:
        raise ValueError("not a disk problem")

    with pytest.raises(ValueError) as raised:
        freeing_space(broken, files, "ingest", last_attempt=True)
    assert str(raised.value) == "not a disk problem"
    assert sorted(p.name for p in files.raw.iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]


def test_which_errors_are_the_data_directory_refusing_a_write(
    tmp_path: Path, setting: SetSetting
) -> None:
    data, inputs = tmp_path / "data", tmp_path / "inputs"
    setting("PIPELINE_DATA_DIR", str(data))
    polars_full = pl.exceptions.ComputeError(
        "parquet: File out of specification: underlying IO error: No space left on device "
        "(os error 28)"
    )
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise InputError("file", "cannot decompress gzip") from None
    except InputError as exc:
        taken_for_bad_input = exc
    cases = {
        "polars, full": polars_full,
        "polars, read-only": OSError(f"Read-only file system (os error 30): {data}/x.csv"),
        "quota": OSError(errno.EDQUOT, "Disk quota exceeded"),
        "python, read-only": OSError(errno.EROFS, "Read-only file system", str(data / "uploads")),
        "no permission in the data dir": PermissionError(
            errno.EACCES, "Permission denied", str(data / "uploads" / "a")
        ),
        "no permission on an input file": PermissionError(
            errno.EACCES, "Permission denied", str(inputs / "a.csv")
        ),
        "not permitted, no file named": OSError(errno.EPERM, "Operation not permitted"),
        "a missing file": FileNotFoundError(errno.ENOENT, "No such file", str(data / "x")),
        "a bad file": pl.exceptions.ComputeError("could not parse `x` as dtype i64 at column 'id'"),
        "an InputError over a full disk": taken_for_bad_input,
        "an error raised from a full disk": NoSpaceError("the stage's own message"),
    }
    cases["an error raised from a full disk"].__cause__ = polars_full
    assert {name: refusal(exc) for name, exc in cases.items()} == {
        "polars, full": Refusal(errno.ENOSPC),
        "polars, read-only": Refusal(errno.EROFS, f"{data}/x.csv"),
        "quota": Refusal(errno.EDQUOT),
        "python, read-only": Refusal(errno.EROFS, str(data / "uploads")),
        "no permission in the data dir": Refusal(errno.EACCES, str(data / "uploads" / "a")),
        "no permission on an input file": None,
        "not permitted, no file named": None,
        "a missing file": None,
        "a bad file": None,
        "an InputError over a full disk": Refusal(errno.ENOSPC),
        "an error raised from a full disk": Refusal(errno.ENOSPC),
    }
    # PIPELINE_INPUT_DIR inside PIPELINE_DATA_DIR: an unreadable input is still the file's
    setting("PIPELINE_INPUT_DIR", str(data / "inputs"))
    unreadable = PermissionError(errno.EACCES, "Permission denied", str(data / "inputs" / "a.csv"))
    assert (refusal(unreadable), refusal(cases["no permission in the data dir"])) == (
        None,
        Refusal(errno.EACCES, str(data / "uploads" / "a")),
    )
    assert [str(Refusal(errno.EDQUOT)), str(Refusal(errno.EROFS, "/d/uploads"))] == [
        "[Errno 122] Disk quota exceeded",
        "[Errno 30] Read-only file system: '/d/uploads'",
    ]
    assert disk.FREE_SPACE == FREE_SPACE
