"""The ingest stage's error when it rejects every record: `all 1 input records were rejected`
said one record as many."""

from pathlib import Path

import pytest

from app.pipeline import work
from app.pipeline.store import RunFiles

HEADER = "id,name,category,value,quantity,is_active,created_at"
BAD = "{n},bad,Q,10,1,true,2026-03-01"


@pytest.mark.parametrize(
    ("records", "said"),
    [
        (
            1,
            "the only input record was rejected (unknown category (must be A, B, C or D): 1); "
            "the run's rejects file lists it with its reject_reason",
        ),
        (
            2,
            "all 2 input records were rejected (unknown category (must be A, B, C or D): 2); "
            "the run's rejects file lists each with its reject_reason",
        ),
    ],
)
def test_every_record_rejected_is_said_in_number(tmp_path: Path, records: int, said: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text("\n".join([HEADER, *(BAD.format(n=n) for n in range(records))]) + "\n")
    files = RunFiles(tmp_path / "run")
    work.generate(
        files, record_count=1, seed=1, batch_rows=1, source=work.InputSource(source, "csv")
    )
    with pytest.raises(work.RecordsRejectedError) as rejected:
        work.ingest(files)
    assert str(rejected.value) == said
