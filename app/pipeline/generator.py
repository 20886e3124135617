"""The synthetic records: each one a pure function of (seed, id).

`record` is the definition, one record in plain Python; `generate_batch` computes the same records
a batch at a time with numpy. Because nothing depends on what came before, the data is the same
whatever the batch size, the process or the order the records are made in.
"""

import math
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from app.pipeline.stage_stop import StageStoppedError
from app.pipeline.stages import CATEGORIES, QUANTITY_RANGE, VALUE_RANGE

ACTIVE_PROBABILITY = 0.8
EPOCH = datetime(2026, 1, 1)  # created_at falls in the year from here

_MASK = (1 << 64) - 1
_LOW32 = 0xFFFF_FFFF
_GOLDEN = 0x9E37_79B9_7F4A_7C15  # splitmix64's increment
_MIX1, _MIX2 = 0xBF58_476D_1CE4_E5B9, 0x94D0_49BB_1331_11EB
_CENTS_LOW = round(VALUE_RANGE[0] * 100)
_CENTS_SPAN = round(VALUE_RANGE[1] * 100) - _CENTS_LOW + 1
_QUANTITY_SPAN = QUANTITY_RANGE[1] - QUANTITY_RANGE[0] + 1
_ACTIVE_BELOW = round(ACTIVE_PROBABILITY * 2**32)
_YEAR_SECONDS = 365 * 24 * 60 * 60


def _key(seed: int) -> int:
    return (seed * _GOLDEN) & _MASK


def _mix(z: int) -> int:
    """splitmix64's finaliser: 64 well-mixed bits from a counter."""
    z = (z + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    return z ^ (z >> 31)


def record(record_id: int, *, seed: int) -> dict[str, Any]:
    """The record with this id: 128 bits from two hashes of (seed, id), cut into the fields."""
    a = _mix((record_id + _key(seed)) & _MASK)
    b = _mix(a)
    return {
        "id": record_id,
        "name": f"record-{record_id}",
        "category": CATEGORIES[a & 3],
        "value": (_CENTS_LOW + ((a >> 2) & _LOW32) % _CENTS_SPAN) / 100,
        "quantity": QUANTITY_RANGE[0] + (b & _LOW32) % _QUANTITY_SPAN,
        "is_active": (b >> 32) < _ACTIVE_BELOW,
        "created_at": EPOCH + timedelta(seconds=(a >> 34) % _YEAR_SECONDS),
    }


def _mix_array(z: np.ndarray) -> np.ndarray:
    """`_mix` on a uint64 array (numpy's unsigned arithmetic wraps as the masks do)."""
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def generate_batch(start_id: int, size: int, *, seed: int) -> pl.DataFrame:
    """The records with ids start_id .. start_id + size - 1, exactly as `record` makes them."""
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    ids = np.arange(start_id, start_id + size, dtype=np.uint64)
    a = _mix_array(ids + np.uint64(_key(seed)))
    b = _mix_array(a)
    low32 = np.uint64(_LOW32)
    cents = ((a >> np.uint64(2)) & low32) % np.uint64(_CENTS_SPAN) + np.uint64(_CENTS_LOW)
    quantities = (b & low32) % np.uint64(_QUANTITY_SPAN) + np.uint64(QUANTITY_RANGE[0])
    seconds = ((a >> np.uint64(34)) % np.uint64(_YEAR_SECONDS)).astype(np.int64)
    return pl.DataFrame(
        {
            "id": pl.Series(ids.astype(np.int64), dtype=pl.Int64),
            # a gather, not numpy strings: converting those cost most of a batch's time
            "category": pl.Series(CATEGORIES, dtype=pl.String).gather(
                (a & np.uint64(3)).astype(np.uint32)
            ),
            "value": pl.Series(cents.astype(np.float64) / 100, dtype=pl.Float64),
            "quantity": pl.Series(quantities.astype(np.int64), dtype=pl.Int64),
            "is_active": pl.Series((b >> np.uint64(32)) < np.uint64(_ACTIVE_BELOW)),
            "created_at": pl.Series(
                np.datetime64(EPOCH, "us") + seconds.astype("timedelta64[s]")
            ).cast(pl.Datetime("us")),
        }
    ).select(
        "id",
        pl.format("record-{}", pl.col("id")).alias("name"),
        "category",
        "value",
        "quantity",
        "is_active",
        "created_at",
    )


def threads() -> int:
    """Batches made at once: one per core this process may use, at most 4 (each holds ~90 MB)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def write_generated(
    out_dir: Path,
    record_count: int,
    *,
    seed: int,
    batch_rows: int = 1_000_000,
    stop: threading.Event | None = None,
) -> list[Path]:
    """Write ids 1..record_count as part-NNNNN.parquet, batch_rows records per part, `threads()`
    parts at once (numpy and Polars release the GIL). Once `stop` is set (its run was stopped:
    app/pipeline/stage_stop.py), no part is begun: the parts being written finish, and
    StageStoppedError says how many were."""
    if record_count < 0:
        raise ValueError(f"record_count must be >= 0, got {record_count}")
    if batch_rows <= 0:
        raise ValueError(f"batch_rows must be > 0, got {batch_rows}")
    out_dir.mkdir(parents=True, exist_ok=True)
    stopped = stop or threading.Event()
    parts = math.ceil(record_count / batch_rows)

    def write_part(index: int) -> Path:
        if stopped.is_set():  # queued before the stop: a part begun after it is not written
            raise StageStoppedError
        start = index * batch_rows
        path = out_dir / f"part-{index:05d}.parquet"
        # uncompressed, without statistics: ingest reads it back once, whole
        generate_batch(start + 1, min(batch_rows, record_count - start), seed=seed).write_parquet(
            path, compression="uncompressed", statistics=False
        )
        return path

    workers = threads()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # a window of parts in flight, not one future per part: at 50M records of
            # batch_rows=1 those would take gigabytes
            window: deque[Future[Path]] = deque()
            paths: list[Path] = []
            try:
                for index in range(parts):
                    if len(window) > workers:  # `workers` writing, one queued: wait for one
                        paths.append(window.popleft().result())
                    if stopped.is_set():
                        raise StageStoppedError
                    window.append(pool.submit(write_part, index))
                paths.extend(part.result() for part in list(window))
            except BaseException:
                for part in window:
                    part.cancel()  # a failed part fails the stage at once, a stop stops it
                raise
            return paths
    except StageStoppedError:  # counted once the parts in flight are written
        written = len(list(out_dir.glob("part-*.parquet")))
        raise StageStoppedError(
            f"generate stopped between parts: {written:,} of {parts:,} parts written"
        ) from None
