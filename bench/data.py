"""The data stages at scale: the pipeline's own stage code vs one Polars query vs row-wise Python.

For each size (BENCH_SIZES, default 1M and 10M synthetic records), side by side in one run:

(a) pipeline — app.pipeline.work's five functions, exactly what the Prefect tasks call, in a
    subprocess of their own so its peak RSS (VmHWM) is theirs alone; time = sum of stages;
(b) engine   — one hand-written Polars lazy query from the same generated records to the same three
    outputs (results, summary, rejects): the "raw engine" anchor, no intermediate files;
(c) rowwise  — the origin-style implementation in pure Python (bench/rowwise.py): every record a
    dict made one at a time, written to a JSON Lines file and read back, validated, computed and
    summarised in loops, outputs written as JSON Lines; in a subprocess. Run at the sizes where
    it would finish within ROWWISE_LIMIT_S and fit in 3/4 of the available memory; above that
    its time is extrapolated linearly from the largest size it ran at (the JSON says so, and why).

All three start from the same records (app.pipeline.generator: (a) and (b) a batch at a time with
numpy, (c) one record at a time with `generator.record`) and each timing includes producing them;
(a) and (b) write their outputs with the same Parquet settings (zstd level 1), so their ratio
measures the stages' structure, not a compression level. Outputs are checked identical: every
column exactly, floating-point columns to 1e-9 relative (sums taken in another order differ in
the last bits).
Timings are the fastest of BENCH_ROUNDS rounds, (a) and (b) alternating, to damp a shared machine.

Writes bench/results/data.json (BENCH_OUTPUT elsewhere, e.g. for a CI smoke run at
BENCH_SIZES=10000); the last line printed is the summary of the largest size.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from app.config import PROJECT_ROOT
from bench import engine, rowwise

RESULTS = PROJECT_ROOT / "bench" / "results" / "data.json"
SEED = 42
BATCH_ROWS = 1_000_000
ROWWISE_LIMIT_S = 300.0
STAGES = ("generate", "ingest", "process", "transform", "export")


# --------------------------------------------------------------------------- (a) the pipeline


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM. (ru_maxrss would do, but Linux carries the parent's peak
    over fork+exec into it, so a subprocess of a big parent would report the parent's.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pipeline(root: Path, records: int, batch_rows: int = BATCH_ROWS) -> dict[str, Any]:
    """The five stage functions the Prefect tasks call, in order; durations and peak RSS."""
    from app.pipeline import work
    from app.pipeline.store import RunFiles

    files = RunFiles(root)
    durations: dict[str, float] = {}
    peaks: dict[str, float] = {}  # the process's peak so far, after each stage
    for name in STAGES:
        started = time.perf_counter()
        if name == "generate":
            work.generate(files, record_count=records, seed=SEED, batch_rows=batch_rows)
        else:
            getattr(work, name)(files)
        durations[name] = time.perf_counter() - started
        peaks[name] = peak_rss_mb()
    return {"stage_s": durations, "peak_rss_mb": peaks["export"], "peak_rss_after_mb": peaks}


def in_subprocess(mode: str, root: Path, records: int, batch_rows: int) -> dict[str, Any]:
    """One part of the benchmark (`pipeline` or `rowwise`) in a process of its own, so its peak
    RSS is its own and its memory is gone when it ends."""
    shutil.rmtree(root, ignore_errors=True)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.data"),
            *(f"--{mode}-only", str(root), str(records), "--batch-rows", str(batch_rows)),
        ],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- (b) the engine


def run_engine(root: Path, records: int, batch_rows: int) -> float:
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    engine.engine_query(engine.generated(records, batch_rows, seed=SEED), root)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- (c) row-wise Python


def run_rowwise(root: Path, records: int) -> dict[str, float]:
    started = time.perf_counter()
    rowwise.run(root, records, seed=SEED)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def available_memory_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 1024
    return float("inf")


# --------------------------------------------------------------------------- checks and report


OUTPUTS = ("output/results.parquet", "output/summary.parquet", "rejects.parquet")


def assert_same_outputs(expected: Path, actual: Path | dict[str, pl.DataFrame]) -> None:
    """The three outputs are equal: exactly, floats to 1e-9 relative."""
    for name in OUTPUTS:
        assert_frame_equal(
            actual[name] if isinstance(actual, dict) else pl.read_parquet(actual / name),
            pl.read_parquet(expected / name),
            check_exact=False,
            rel_tol=1e-9,
            abs_tol=0.0,
        )


def machine() -> dict[str, Any]:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024**2, 1),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def bench_size(work_dir: Path, records: int, rounds: int, batch_rows: int) -> dict[str, Any]:
    pipeline_dir, engine_dir = work_dir / "pipeline", work_dir / "engine"
    pipeline_runs, engine_runs = [], []
    for _ in range(rounds):
        pipeline_runs.append(in_subprocess("pipeline", pipeline_dir, records, batch_rows))
        engine_runs.append(run_engine(engine_dir, records, batch_rows))
    assert_same_outputs(pipeline_dir, engine_dir)
    best = min(pipeline_runs, key=lambda run: sum(run["stage_s"].values()))
    pipeline_s = sum(best["stage_s"].values())
    engine_s = min(engine_runs)
    result: dict[str, Any] = {
        "records": records,
        "rounds": rounds,
        "pipeline_s": round(pipeline_s, 3),
        "pipeline_stage_s": {k: round(v, 3) for k, v in best["stage_s"].items()},
        "pipeline_records_per_s": round(records / pipeline_s),
        "peak_rss_mb": round(max(run["peak_rss_mb"] for run in pipeline_runs)),
        "peak_rss_mb_per_round": [round(run["peak_rss_mb"]) for run in pipeline_runs],
        "peak_rss_after_stage_mb": {
            k: round(v)
            for k, v in max(pipeline_runs, key=lambda r: r["peak_rss_mb"])[
                "peak_rss_after_mb"
            ].items()
        },
        "engine_s": round(engine_s, 3),
        "engine_records_per_s": round(records / engine_s),
        "pipeline_vs_engine": round(pipeline_s / engine_s, 3),
        "outputs_identical": True,
    }
    return result


def add_rowwise(
    result: dict[str, Any], work_dir: Path, batch_rows: int, measured: dict[str, float] | None
) -> dict[str, float] | None:
    """Row-wise at this size when it should finish within ROWWISE_LIMIT_S and fit in 3/4 of the
    available memory (it holds every record as a dict); else extrapolated linearly."""
    records = result["records"]
    too_slow = measured and measured["s_per_record"] * records > ROWWISE_LIMIT_S
    too_big = measured and measured["mb_per_record"] * records > available_memory_mb() * 0.75
    if measured and (too_slow or too_big):
        rowwise_s = measured["s_per_record"] * records
        result["rowwise_measured_at"] = measured["records"]
        result["rowwise_extrapolated_because"] = "time" if too_slow else "memory"
    else:
        run = in_subprocess("rowwise", work_dir / "row", records, batch_rows)
        rowwise_s = run["seconds"]
        assert_same_outputs(work_dir / "pipeline", rowwise.read_outputs(work_dir / "row"))
        result["rowwise_measured_at"] = records
        result["rowwise_peak_rss_mb"] = round(run["peak_rss_mb"])
        measured = {
            "records": records,
            "s_per_record": rowwise_s / records,
            "mb_per_record": run["peak_rss_mb"] / records,
        }
    result["rowwise_s"] = round(rowwise_s, 3)
    result["rowwise_records_per_s"] = round(records / rowwise_s)
    result["rowwise_speedup"] = round(rowwise_s / result["pipeline_s"], 1)
    return measured


def summary_line(result: dict[str, Any]) -> str:
    return (
        f"data: records={result['records']} pipeline_s={result['pipeline_s']:.3f} "
        f"engine_s={result['engine_s']:.3f} pipeline_vs_engine={result['pipeline_vs_engine']:.2f} "
        f"rowwise_speedup={result['rowwise_speedup']:.1f} peak_rss_mb={result['peak_rss_mb']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "1000000 10000000"))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument(
        "--output", type=Path, default=Path(os.environ.get("BENCH_OUTPUT") or RESULTS)
    )
    parser.add_argument("--pipeline-only", nargs=2, metavar=("DIR", "RECORDS"))
    parser.add_argument("--rowwise-only", nargs=2, metavar=("DIR", "RECORDS"))
    args = parser.parse_args()
    if args.pipeline_only:
        root, records = Path(args.pipeline_only[0]), int(args.pipeline_only[1])
        print(json.dumps(run_pipeline(root, records, args.batch_rows)))
        return
    if args.rowwise_only:
        root, records = Path(args.rowwise_only[0]), int(args.rowwise_only[1])
        print(json.dumps(run_rowwise(root, records)))
        return
    sizes = sorted(int(size) for size in args.sizes.replace(",", " ").split())
    host = machine()
    results, measured = [], None
    (PROJECT_ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-data-", dir=PROJECT_ROOT / "var") as tmp:
        for records in sizes:
            result = bench_size(Path(tmp) / str(records), records, args.rounds, args.batch_rows)
            measured = add_rowwise(result, Path(tmp) / str(records), args.batch_rows, measured)
            results.append(result)
            shutil.rmtree(Path(tmp) / str(records), ignore_errors=True)
            print(json.dumps(result), flush=True)
    report = {"machine": host, "sizes": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(summary_line(results[-1]))


if __name__ == "__main__":
    main()
