"""The lines of a JSON Lines input that ingest rejected, kept as the user wrote them. Polars reads
5000 in a column of 12.5s as 5000.0, and a number in a column of the file's own as text: the
rejects file alone cannot give a rejected row back as it was sent.

Generate notes which file it reads (remember); ingest numbers the rows it validates (validate)
and, only when it rejected some, reads that file's lines again while it is unchanged and keeps
the rejected ones beside the rejects file (sink_rejects: rejects.sent.parquet, one line per
rejected row, in the rejects file's order). The CSV and JSON Lines downloads of the rejects are
made from them (app/api/downloads.py). A file with no rejected row is not read again: the accepted
rows' path is what it was.
"""

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from app.pipeline import stages
from app.pipeline.input_files import jsonl_text
from app.pipeline.input_files.compression import plain
from app.pipeline.store import RunFiles, count_rows, scan, sink

logger = logging.getLogger(__name__)

LINE = "line"
ROW = "__sent_row"  # a raw row's number: its line's among the file's non-blank lines
_NOTE = "input.json"  # in the run's directory: the JSON Lines file generate read
# what a line skipped as blank holds (a line of vertical tabs or form feeds is refused at input,
# app/pipeline/input_files/locate.py: none is in a file a run reads)
_BLANK = " \t\r\n\x0b\x0c"
_REASON_KEY = f'{{"{stages.REJECT_REASON}":'
_BATCH = 65_536  # kept lines a Parquet part holds
_BOM = b"\xef\xbb\xbf"


def sent_path(rejects: Path) -> Path:
    """Where the lines of the rows in `rejects` are kept (kept with it: app/pipeline/stage_stop)."""
    return rejects.with_name(f"{rejects.stem}.sent.parquet")


def remember(files: RunFiles, path: Path, fmt: str) -> None:
    """Note the JSON Lines file generate is about to read, with its size and modification time:
    ingest reads it again only if it is the same file then."""
    if fmt != "jsonl":
        return
    try:
        stat = path.stat()
    except OSError:  # reading it fails and says why
        return
    note = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    (files.root / _NOTE).write_text(json.dumps(note), encoding="utf-8")


def validate(files: RunFiles) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """stages.validate of the run's raw rows: (valid, rejects), the rejects numbered (ROW) when
    generate read a JSON Lines file (the numbering costs the valid rows nothing measurable)."""
    raw = scan(files.raw)
    if not (files.root / _NOTE).is_file():
        return stages.validate(raw)
    valid, rejects = stages.validate(raw.with_row_index(ROW))
    return valid.drop(ROW), rejects


def sink_rejects(rejects: pl.LazyFrame, files: RunFiles, *, records_in: int) -> int:
    """Write the rejects file (store.sink), and when its rows are numbered, the lines they were
    sent as beside it if the JSON Lines file generate read is unchanged; its rows."""
    dest = sent_path(files.rejects)
    dest.unlink(missing_ok=True)  # an earlier attempt's
    if ROW not in rejects.collect_schema():
        return sink(rejects, files.rejects)
    numbered = files.root / f"{files.rejects.stem}.numbered.parquet"
    rejected = sink(rejects, numbered)
    try:
        source = _unchanged_input(files) if rejected else None
        if source is not None:
            _keep_lines(source, pl.scan_parquet(numbered).select(ROW), dest, records_in, files)
        return sink(pl.scan_parquet(numbered).drop(ROW), files.rejects)
    finally:
        numbered.unlink(missing_ok=True)


def _keep_lines(
    source: Path, rows: pl.LazyFrame, dest: Path, records_in: int, files: RunFiles
) -> None:
    """Write the lines of `source` (blank ones aside, as read) numbered `rows` to `dest`.

    One pass over the file's lines, in Python: memory holds a batch of kept lines, whatever the
    file's size and however many rows were rejected. Polars' filter of its lines by the rejected
    numbers held the file's lines (856 MB at ingest's peak for 3M rejected rows of 400 MB, 402
    without it); ~4M lines/s here, and only for a run that rejected rows."""
    wanted = rows.collect().get_column(ROW).sort().to_numpy()
    with (
        plain(source, files.root, "jsonl", field="input_path") as readable,
        tempfile.TemporaryDirectory(prefix=".rejects.sent-", dir=files.root) as own,
    ):
        parts = Path(own)
        count = _pick_lines(readable.path, wanted, parts)
        if count != records_in:  # not the lines generate read: none is kept rather than others
            logger.warning(
                "%s: %s has %s lines, not the %s records read; its rejects keep the values read",
                files.root,
                source,
                f"{count:,}",
                f"{records_in:,}",
            )
            return
        sink(pl.scan_parquet(parts / "*.parquet"), dest)  # in the parts' (the file's) order


def _pick_lines(path: Path, wanted: Any, parts: Path) -> int:
    """Write the non-blank lines of `path` whose numbers (among them, from 0) are `wanted`, in
    ascending order, to numbered Parquet files in `parts`, a batch each; how many there are."""
    blank = _BLANK.encode()
    batch: list[str] = []
    written = 0

    def flush() -> None:
        nonlocal written
        pl.DataFrame({LINE: batch}, schema={LINE: pl.String}).write_parquet(
            parts / f"{written:09d}.parquet"
        )
        written += 1
        batch.clear()

    count, position = 0, 0
    next_wanted = int(wanted[0]) if len(wanted) else -1
    with path.open("rb") as lines:
        if lines.read(len(_BOM)) != _BOM:  # a byte-order mark is no line's, as the reader reads
            lines.seek(0)
        for line in lines:
            kept = line.strip(blank)
            if not kept:
                continue
            if count == next_wanted:
                batch.append(kept.decode("utf-8", errors="replace"))
                position += 1
                next_wanted = int(wanted[position]) if position < len(wanted) else -1
                if len(batch) == _BATCH:
                    flush()
            count += 1
    if batch or not written:
        flush()
    return count


def _unchanged_input(files: RunFiles) -> Path | None:
    """The JSON Lines file generate read, if it noted one and it has not changed since."""
    try:
        note = json.loads((files.root / _NOTE).read_text(encoding="utf-8"))
        path = Path(note["path"])
        stat = path.stat()
    except OSError:  # gone, or no longer readable: its rejects keep the values read
        return None
    if (stat.st_size, stat.st_mtime_ns) != (note["size"], note["mtime_ns"]):
        logger.warning(
            "%s: %s changed since the run read it; its rejects keep the values read",
            files.root,
            path,
        )
        return None
    return path


def kept(rejects: Path) -> bool:
    """Whether the rows of `rejects` have their lines as sent, one for each."""
    sent = sent_path(rejects)
    if not sent.is_file():
        return False
    return bool(count_rows(sent) == count_rows(rejects))


def as_sent(rejects: Path) -> pl.LazyFrame:
    """Each row of `rejects` as the line it was sent as, its reject_reason added last (one column,
    `line`): {"id": 7, "amount": 5000, "reject_reason": "…"}."""
    line = pl.col(LINE).str.strip_chars(_BLANK)
    body = line.str.strip_suffix("}").str.strip_chars_end(_BLANK)
    reason = (
        pl.struct(stages.REJECT_REASON)
        .struct.json_encode()
        .str.strip_prefix(_REASON_KEY)
        .str.strip_suffix("}")
    )
    comma = pl.when(body == "{").then(pl.lit("")).otherwise(pl.lit(", "))
    written = pl.concat_str(body, comma, pl.lit(f'"{stages.REJECT_REASON}": '), reason, pl.lit("}"))
    return _beside_reasons(rejects).select(written.alias(LINE))


@contextmanager
def as_written(rejects: Path, scratch: Path) -> Iterator[pl.LazyFrame]:
    """The rows of `rejects`, each value as text as its line wrote it (5000, not 5000.0; a list as
    its JSON), in the rejects file's columns; read in `scratch`, its copies removed afterwards."""
    names = pl.scan_parquet(rejects).collect_schema().names()
    with tempfile.TemporaryDirectory(prefix=".rejects.sent-", dir=scratch) as own:
        lines, text = Path(own) / "lines.jsonl", Path(own) / "text.jsonl"
        write_lines(pl.scan_parquet(sent_path(rejects)), lines)
        jsonl_text.rewrite(lines, text, field="file")
        schema = {name: pl.String() for name in names if name != stages.REJECT_REASON}
        values = pl.scan_ndjson(text, schema=schema)
        reasons = pl.scan_parquet(rejects).select(stages.REJECT_REASON)
        yield pl.concat([values, reasons], how="horizontal").select(names)


def write_lines(frame: pl.LazyFrame, dest: Path) -> None:
    """Write the one text column of `frame` as lines, each as it is (no quotes, no header)."""
    frame.sink_csv(dest, include_header=False, quote_style="never", engine="streaming")


def _beside_reasons(rejects: Path) -> pl.LazyFrame:
    """The kept lines beside the rejects file's reject_reason, row by row."""
    lines = pl.scan_parquet(sent_path(rejects)).select(LINE)
    reasons = pl.scan_parquet(rejects).select(stages.REJECT_REASON)
    return pl.concat([lines, reasons], how="horizontal")
