"""The API-throughput anchor: a bare FastAPI endpoint returning the same JSON from memory.

`uvicorn bench.bare_api:app` with BENCH_BODY_FILE naming a JSON file captured from the real
`GET /api/pipelines/{id}`; bench/api.py serves both with the same uvicorn settings.
"""

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

BODY: dict[str, Any] = json.loads(Path(os.environ["BENCH_BODY_FILE"]).read_text())

app = FastAPI()


@app.get("/api/pipelines/{pipeline_id}")
async def read_pipeline(pipeline_id: int) -> dict[str, Any]:
    return BODY
