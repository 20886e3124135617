"""What a wide input file costs a run: the upload's check and the five stages on a file of the 7
required columns plus N extra text columns and M rows, each case in a process of its own (its
peak RSS is its own), CSV downloads of the results included.

    .venv/bin/python -m bench.wide --columns 1000,5000,20000 --rows 1,2000 --format csv

Prints one JSON line per case and writes them all to bench/results/wide.json (--output elsewhere):
the peak RSS of the whole case and of each step (`peak_rss_mb_by_step`, the peak counted afresh
from each step's start, so it includes what the steps before it left allocated), and the row
groups of the stage files.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT
from bench.parquet_footer import row_group_sizes

RESULTS = PROJECT_ROOT / "bench" / "results" / "wide.json"
REQUIRED = "id,name,category,value,quantity,is_active,created_at"
STAGES = ("generate", "ingest", "process", "transform", "export")


def peak_rss_mb() -> float:
    """This process's peak RSS so far (VmHWM), or since the last reset_peak_rss()."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux: 5 to /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def row_groups(path: Path) -> dict[str, int]:
    """How many row groups a stage file has, and the rows of its first."""
    rows = row_group_sizes(path)
    return {"groups": len(rows), "first_rows": rows[0] if rows else 0}


def write_input(path: Path, columns: int, rows: int, fmt: str) -> None:
    """REQUIRED plus `columns` extra text columns c0…, `rows` valid rows, as `fmt`."""
    import polars as pl

    extra = "".join(f",c{i}" for i in range(columns))
    values = "".join(",x" for _ in range(columns))
    csv = path.with_suffix(".csv")
    with csv.open("w") as out:
        out.write(REQUIRED + extra + "\n")
        for row in range(rows):
            out.write(f"{row + 1},a,A,20,1,true,2026-01-01T00:00:00{values}\n")
    if fmt == "parquet":
        pl.scan_csv(csv, infer_schema=False).sink_parquet(path)
    elif fmt == "jsonl":
        pl.scan_csv(csv, infer_schema=False).sink_ndjson(path)


def one_case(columns: int, rows: int, fmt: str) -> dict[str, Any]:
    """The check, the five stages and a CSV download of one wide file, timed, in this process."""
    import polars as pl

    from app.pipeline import work
    from app.pipeline.input_files import inputs
    from app.pipeline.store import RunFiles

    peaks: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        source = root / f"wide.{fmt}"
        write_input(source, columns, rows, fmt)
        result: dict[str, Any] = {"columns": columns + 7, "rows": rows, "format": fmt}
        result["file_mb"] = round(source.stat().st_size / 1e6, 2)
        started = time.perf_counter()
        inputs.check(source, fmt, root)
        seconds = {"check": time.perf_counter() - started}
        peaks["check"] = peak_rss_mb()
        files = RunFiles(root / "run")
        for stage in STAGES:
            reset_peak_rss()
            started = time.perf_counter()
            if stage == "generate":
                where = work.InputSource(source, fmt)
                work.generate(files, record_count=rows, seed=1, batch_rows=rows, source=where)
            else:
                getattr(work, stage)(files)
            seconds[stage] = time.perf_counter() - started
            peaks[stage] = peak_rss_mb()
        reset_peak_rss()
        started = time.perf_counter()
        pl.scan_parquet(files.results).sink_csv(root / "results.csv", engine="streaming")
        seconds["csv_download"] = time.perf_counter() - started
        peaks["csv_download"] = peak_rss_mb()
        result["results_rows"] = pl.scan_parquet(files.results).select(pl.len()).collect().item()
        stored = {"raw": files.raw, "ingested": files.ingested, "results": files.results}
        result["row_groups"] = {name: row_groups(path) for name, path in stored.items()}
    result["seconds"] = {name: round(value, 2) for name, value in seconds.items()}
    result["run_s"] = round(sum(seconds[stage] for stage in STAGES), 2)
    result["peak_rss_mb"] = round(max(peaks.values()))
    result["peak_rss_mb_by_step"] = {name: round(value) for name, value in peaks.items()}
    return result


def in_subprocess(columns: int, rows: int, fmt: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.wide", "--one", f"{columns},{rows},{fmt}"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PIPELINE_MAX_INPUT_COLUMNS": str(columns + 7)},
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--columns", default="1000,5000,20000", help="extra columns, comma-separated"
    )
    parser.add_argument("--rows", default="1,2000", help="rows, comma-separated")
    parser.add_argument("--format", default="csv", choices=("csv", "jsonl", "parquet"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # columns,rows,format: one case, here
    args = parser.parse_args()
    if args.one:
        columns, rows, fmt = args.one.split(",")
        print(json.dumps(one_case(int(columns), int(rows), fmt)))
        return
    results = []
    for rows in map(int, args.rows.split(",")):
        for columns in map(int, args.columns.split(",")):
            results.append(in_subprocess(columns, rows, args.format))
            print(json.dumps(results[-1]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
