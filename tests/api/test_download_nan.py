"""How a float that is not a number reaches each download format: JSON has no NaN or infinity,
so JSON Lines writes null; CSV writes NaN, inf, -inf; Parquet keeps the floats. A pin of the
behaviour the README documents (Polars' sinks decide it), not a change."""

import io
import json
import math
import shutil
from pathlib import Path

import httpx
import polars as pl

from app.models import Status
from app.pipeline.store import runs_dir
from tests.api.test_results import add_run
from tests.support.stages import run_stages_on

SCORES = [math.nan, math.inf, -math.inf, 1.5]


async def test_nan_and_infinity_in_each_download_format(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    shutil.rmtree(runs_dir(), ignore_errors=True)
    source = tmp_path / "in.parquet"
    pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "name": ["a"] * 4,
            "category": ["A"] * 4,
            "value": [10.0] * 4,
            "quantity": [1] * 4,
            "is_active": [True] * 4,
            "created_at": ["2026-01-01"] * 4,
            "score": SCORES,
        }
    ).write_parquet(source)
    await client.post("/api/pipelines", json={"name": "p"})
    run_id = await add_run(1, Status.COMPLETED)
    run_stages_on(run_id, source, "parquet")
    base = f"/api/pipelines/1/runs/{run_id}/output"

    as_jsonl = await client.get(base, params={"format": "jsonl"})
    assert [json.loads(line)["score"] for line in as_jsonl.text.splitlines()] == [
        None,
        None,
        None,
        1.5,
    ]
    as_csv = await client.get(base, params={"format": "csv"})
    assert pl.read_csv(io.BytesIO(as_csv.content), infer_schema=False)["score"].to_list() == [
        "NaN",
        "inf",
        "-inf",
        "1.5",
    ]
    as_parquet = await client.get(base)
    scores = pl.read_parquet(io.BytesIO(as_parquet.content))["score"]
    assert (scores.is_nan().to_list(), scores[1:].to_list()) == (
        [True, False, False, False],
        [math.inf, -math.inf, 1.5],
    )
