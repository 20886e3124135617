"""Timestamps in CSV and JSON Lines downloads (app/api/downloads.py timestamps_as_text): one format,
inside list, array and struct columns too."""

import datetime as dt
import json
from pathlib import Path

import polars as pl

from app.api.downloads import timestamps_as_text

AT = dt.datetime(2026, 3, 1, 12, 0, 0)


def test_timestamps_inside_lists_and_structs_are_written_like_top_level_ones(
    tmp_path: Path,
) -> None:
    """JSON Lines wrote a struct's or a list's timestamp 2026-03-01 12:00:00 while the column
    beside it read 2026-03-01T12:00:00.000000."""
    frame = pl.DataFrame(
        {
            "created_at": pl.Series([AT], dtype=pl.Datetime("us")),
            "event": pl.Series(
                [{"at": AT, "n": 1}], dtype=pl.Struct({"at": pl.Datetime("ms"), "n": pl.Int64})
            ),
            "seen": pl.Series([[AT, None]], dtype=pl.List(pl.Datetime("us", "UTC"))),
            "pair": pl.Series([[AT, AT]], dtype=pl.Array(pl.Datetime("ns"), 2)),
            "visits": pl.Series(
                [[{"at": AT, "where": "x"}]],
                dtype=pl.List(pl.Struct({"at": pl.Datetime("us"), "where": pl.String})),
            ),
            "plain": pl.Series([{"n": 2, "tags": ["a"]}]),
        }
    )
    path = tmp_path / "out.jsonl"
    timestamps_as_text(frame.lazy()).sink_ndjson(path)
    assert json.loads(path.read_text()) == {
        "created_at": "2026-03-01T12:00:00.000000",
        "event": {"at": "2026-03-01T12:00:00.000", "n": 1},
        "seen": ["2026-03-01T12:00:00.000000+00:00", None],
        "pair": ["2026-03-01T12:00:00.000000000", "2026-03-01T12:00:00.000000000"],
        "visits": [{"at": "2026-03-01T12:00:00.000000", "where": "x"}],
        "plain": {"n": 2, "tags": ["a"]},
    }


def test_a_frame_without_timestamps_is_left_as_it_is() -> None:
    frame = pl.LazyFrame({"id": [1], "tags": [["a"]], "s": [{"n": 1}]})
    assert timestamps_as_text(frame) is frame
