"""`make bench`: this service against its anchors, each pair measured side by side in one run.

1. trigger→completed latency (1,000 records): HTTP POST → our status `completed`, against a bare
   Prefect deployment of five empty tasks run with `run_deployment` on the same server and
   workers — once as Prefect starts it (the anchor) and once through our warm launcher;
2. API read throughput: `GET /api/pipelines/{id}` against a bare FastAPI endpoint returning the
   same JSON from memory, both under the same uvicorn settings, 64 connections;
3. a burst of triggers at once on 2 workers against the makespan their limits allow, and the
   same burst of the bare anchor straight in Prefect; CPU per run by process for both.

The stack is the production topology as processes: PostgreSQL, the Prefect server, 2 workers
(limit 4 each), the API. Results go to bench/results/bench.json and latency.png; the last line
printed is the summary. `--smoke` runs a few of each, for CI.
"""

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import httpx

from app.config import PROJECT_ROOT
from app.stack.topology import Stack
from bench.cpu import CpuMeter
from bench.load import LoadResult, percentile, run_load
from bench.stack import free_port, start_postgres, start_stack

RESULTS = PROJECT_ROOT / "bench" / "results"
WORKERS = 2
FINAL = ("completed", "failed", "cancelled")


def describe(values: list[float]) -> dict[str, float]:
    return {
        "runs": len(values),
        "median_s": round(statistics.median(values), 3),
        "p95_s": round(percentile(values, 95), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


# 1. latency ------------------------------------------------------------------------------------


def trigger_and_wait(api: httpx.Client, name: str) -> tuple[int, float]:
    """POST a 1,000-record pipeline with trigger, poll until final; (id, seconds)."""
    started = time.monotonic()
    created = api.post("/api/pipelines", json={"name": name, "record_count": 1000, "trigger": True})
    created.raise_for_status()
    pipeline_id = int(created.json()["id"])
    while True:
        body = api.get(f"/api/pipelines/{pipeline_id}").json()
        if body["status"] in FINAL:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    if body["status"] != "completed":
        raise RuntimeError(f"pipeline {pipeline_id} ended {body['status']}")
    return pipeline_id, elapsed


def deploy_anchors(stack: Stack) -> None:
    """Register the bare flow twice: as Prefect starts it, and through the warm launcher."""
    subprocess.run(
        [sys.executable, "-m", "bench.anchor_deploy"],
        cwd=PROJECT_ROOT,
        env=stack.process_env(),
        check=True,
        capture_output=True,
    )


def run_anchor(deployment: str) -> float:
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    started = time.monotonic()
    # sync_compatible: called outside an event loop it returns the FlowRun, not a coroutine
    flow_run = cast(
        FlowRun,
        run_deployment(deployment, timeout=None, poll_interval=0.1, as_subflow=False),
    )
    elapsed = time.monotonic() - started
    if flow_run.state is None or not flow_run.state.is_completed():
        raise RuntimeError(f"{deployment} ended {flow_run.state}")
    return elapsed


def idle_pause(rng: random.Random, poll: float) -> None:
    """Each measured run starts after a pause of one to two poll intervals. A trigger sent the
    moment the run before it finished would be found by the look the worker makes when that run's
    process ends (app/pipeline/worker.py), not by its next poll. It would measure a sequence, not
    a lone trigger landing at a random point of the worker's poll cycle."""
    time.sleep(poll * (1 + rng.random()))


def measure_latency(stack: Stack, runs: int) -> tuple[dict[str, list[float]], int]:
    kinds = ("service", "anchor", "anchor_warm")
    rng, poll = random.Random(0), float(stack.env.get("PREFECT_WORKER_QUERY_SECONDS", "1"))
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    last_id = 0
    with httpx.Client(base_url=stack.api_url, timeout=60) as api:

        def once(kind: str) -> float:
            nonlocal last_id
            if kind == "service":
                last_id, elapsed = trigger_and_wait(api, "bench-latency")
                return elapsed
            name = "bare-anchor" if kind == "anchor" else "bare-anchor-warm"
            return run_anchor(f"Bare Pipeline/{name}")

        for kind in kinds:  # warm-up: first imports, caches, deployment lookups
            once(kind)
        for round_ in range(runs):
            order = kinds if round_ % 2 == 0 else tuple(reversed(kinds))
            for kind in order:
                idle_pause(rng, poll)
                samples[kind].append(once(kind))
            print(
                f"  latency round {round_ + 1:>2}: "
                + "  ".join(f"{k} {samples[k][-1]:5.2f} s" for k in kinds),
                flush=True,
            )
    return samples, last_id


# 2. API throughput -----------------------------------------------------------------------------


def serve_bare(body: dict[str, Any], root: Path, exits: ExitStack) -> int:
    """The bare endpoint under the same uvicorn settings as the stack's API."""
    body_file = root / "body.json"
    body_file.write_text(json.dumps(body))
    port = free_port()
    log = exits.enter_context((root / "bare-api.log").open("wb"))
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.bare_api:app"),
            *("--http", "app.serving:BoundedHttpTools"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BENCH_BODY_FILE": str(body_file)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    exits.callback(process.wait, 10)
    exits.callback(process.terminate)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/pipelines/1", timeout=2).json() == body:
                return port
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the bare API did not start; see {root / 'bare-api.log'}")


def measure_api(
    stack: Stack, pipeline_id: int, root: Path, exits: ExitStack, requests: int
) -> dict[str, dict[str, float]]:
    path = f"/api/pipelines/{pipeline_id}"
    body = httpx.get(f"{stack.api_url}{path}").json()
    ports = {"service": stack.api_port, "bare": serve_bare(body, root, exits)}
    results: dict[str, list[LoadResult]] = {"service": [], "bare": []}
    for port in ports.values():  # warm-up
        asyncio.run(run_load(port, path, connections=64, requests=500, max_seconds=30))
    for round_ in range(2):
        for target in ("bare", "service") if round_ == 0 else ("service", "bare"):
            result = asyncio.run(
                run_load(ports[target], path, connections=64, requests=requests, max_seconds=60)
            )
            if result.errors:
                raise RuntimeError(f"{target}: {result.errors} responses were not 200")
            results[target].append(result)
            print(
                f"  api round {round_ + 1} {target:>7}: {result.requests_per_second:7.0f} req/s, "
                f"p99 {result.percentile(99):6.1f} ms",
                flush=True,
            )
    return {
        target: LoadResult(
            sum(r.requests for r in runs),
            0,
            sum(r.seconds for r in runs),
            [ms for r in runs for ms in r.latencies_ms],
        ).summary()
        for target, runs in results.items()
    }


# 3. burst --------------------------------------------------------------------------------------


async def burst(stack: Stack, triggers: int, clients: int) -> tuple[float, dict[str, int]]:
    """`triggers` create-and-trigger requests from `clients` clients; makespan to the last final.

    Progress is read the way a dashboard would, a page of the pipeline list (100 each, newest
    first) every 0.25 s — not one request per pending pipeline, which made the client's polling
    a sixth of the machine's CPU during the burst.
    """
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as api:
        queue = list(range(triggers))
        ids: list[int] = []

        async def client() -> None:
            while queue:
                number = queue.pop()
                response = await api.post(
                    "/api/pipelines",
                    json={"name": f"burst-{number}", "record_count": 1000, "trigger": True},
                )
                response.raise_for_status()
                ids.append(int(response.json()["id"]))

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        pending = set(ids)
        statuses: dict[str, int] = {}
        while pending:
            await asyncio.sleep(0.25)
            for item in await _newest(api, len(ids)):
                if item["id"] in pending and item["status"] in FINAL:
                    pending.discard(item["id"])
                    statuses[item["status"]] = statuses.get(item["status"], 0) + 1
            if time.monotonic() - started > 1800:
                raise RuntimeError(f"burst: {len(pending)} runs not final after 30 min")
        return time.monotonic() - started, statuses


async def _newest(api: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """The `count` newest pipelines, a page of 100 at a time."""
    items: list[dict[str, Any]] = []
    for page in range(1, math.ceil(count / 100) + 1):
        response = await api.get("/api/pipelines", params={"page": page, "page_size": 100})
        response.raise_for_status()
        items.extend(response.json()["items"])
    return items


async def bare_burst(triggers: int, clients: int) -> tuple[float, dict[str, int]]:
    """The same burst of the bare anchor — five empty tasks, started through our warm launcher —
    created straight in Prefect, as `run_deployment` does: what Prefect alone costs under the
    same load, on the same server and workers."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        deployment = await client.read_deployment_by_name("Bare Pipeline/bare-anchor-warm")
        gate = asyncio.Semaphore(clients)

        async def create() -> UUID:
            async with gate:
                return (await client.create_flow_run_from_deployment(deployment.id)).id

        started = time.monotonic()
        pending = set(await asyncio.gather(*(create() for _ in range(triggers))))
        statuses: dict[str, int] = {}
        while pending:
            await asyncio.sleep(0.25)
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending)))
            )
            for run in runs:
                if run.state is not None and run.state.is_final():
                    pending.discard(run.id)
                    status = run.state.type.value.lower()
                    statuses[status] = statuses.get(status, 0) + 1
            if time.monotonic() - started > 1800:
                raise RuntimeError(f"bare burst: {len(pending)} runs not final after 30 min")
        return time.monotonic() - started, statuses


def measure_burst(
    stack: Stack,
    meter: CpuMeter,
    triggers: int,
    run: Coroutine[Any, Any, tuple[float, dict[str, int]]],
) -> dict[str, Any]:
    """Run one burst; its makespan, final statuses and the CPU it used per run, by part."""
    cpu_before, runs_before = meter.sample(), flow_run_cpu(stack)
    makespan, statuses = asyncio.run(run)
    time.sleep(2)  # the last processes exit a moment after their runs are final
    flow_runs = [
        cpu
        for log, runs in flow_run_cpu(stack).items()
        for cpu in runs[len(runs_before.get(log, [])) :]
    ]
    cpu_per_run = cpu_split(CpuMeter.spent(cpu_before, meter.sample()), flow_runs, triggers)
    return {
        "triggers": triggers,
        "statuses": statuses,
        "makespan_s": round(makespan, 2),
        "flow_run_cpu_s_median": round(statistics.median(flow_runs), 3) if flow_runs else None,
        "cpu_s_per_run": cpu_per_run,
        # the machine's CPU the burst used, spread over all cores: no makespan can be shorter
        "cpu_bound_makespan_s": round(cpu_per_run["machine"] * triggers / (os.cpu_count() or 1), 2),
    }


ZYGOTE_EXIT = re.compile(r"zygote: flow-run process \d+ exited -?\d+ \(cpu ([0-9.]+) s")


def flow_run_cpu(stack: Stack) -> dict[str, list[float]]:
    """CPU seconds of every flow-run process each worker's zygote has reaped so far, by log."""
    return {
        log.name: [float(cpu) for cpu in ZYGOTE_EXIT.findall(log.read_text(errors="replace"))]
        for log in sorted(stack.log_dir.glob("worker-*.log"))
    }


def stack_meter(stack: Stack, postgres_pid: int) -> CpuMeter:
    """The stack's parts by process tree: a worker's includes its zygote and the runs it forked."""
    parts = {process.name: process.popen.pid for process in stack.processes}
    parts["postgresql"] = postgres_pid
    return CpuMeter(parts)


def cpu_split(spent: dict[str, float], flow_runs: list[float], runs: int) -> dict[str, float]:
    """CPU seconds per run by part: the flow-run processes (from the zygotes' exit lines) apart
    from their workers; `other` is what no part accounts for (the load client, the OS)."""
    workers = sum(cpu for name, cpu in spent.items() if name.startswith("worker-"))
    split = {
        "flow_run_processes": sum(flow_runs),
        "workers_launchers_zygotes": workers - sum(flow_runs),
        "prefect_server": spent.get("prefect-server", 0.0),
        "api": spent.get("api", 0.0),
        "postgresql": spent["postgresql"],
    }
    split["other"] = spent["machine"] - sum(split.values())
    split["machine"] = spent["machine"]
    return {name: round(cpu / runs, 3) for name, cpu in split.items()}


# report ----------------------------------------------------------------------------------------


def chart(samples: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "service": "this service\n(HTTP POST → completed)",
        "anchor_warm": "bare Prefect, 5 empty tasks\n(through our warm launcher)",
        "anchor": "bare Prefect, 5 empty tasks\n(Prefect's own start)",
    }
    figure, axis = plt.subplots(figsize=(8, 4.2))
    axis.boxplot(
        [samples[k] for k in labels], orientation="horizontal", tick_labels=list(labels.values())
    )
    for row, kind in enumerate(labels, start=1):
        axis.scatter(samples[kind], [row] * len(samples[kind]), s=10, alpha=0.6)
    axis.set_xlabel("trigger → completed, seconds (1,000 records)")
    axis.set_title(f"Trigger latency, {len(samples['service'])} runs each, same server and workers")
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def machine() -> str:
    cpus = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.machine()}, {cpus} cores, {memory_gib:.0f} GiB, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="latency runs of each kind")
    parser.add_argument("--api-requests", type=int, default=20_000, help="requests per API round")
    parser.add_argument("--burst", type=int, default=100, help="triggers in the burst")
    parser.add_argument(
        "--worker-limit", type=int, default=4, help="flow runs at once per worker (--limit)"
    )
    parser.add_argument("--smoke", action="store_true", help="a few of each (CI)")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where the JSON goes, the chart beside it (default {RESULTS / 'bench.json'}; "
        "with --smoke, the run's own temporary directory: a smoke run never replaces the figures)",
    )
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-service-"))
    if args.smoke:
        args.runs, args.api_requests, args.burst = 1, 1000, 8
    if args.output is None:
        args.output = root / "bench.json" if args.smoke else RESULTS / "bench.json"

    with ExitStack() as exits:
        print(f"starting PostgreSQL, the Prefect server, {WORKERS} workers and the API …")
        cluster, postgres_env = start_postgres(exits)
        stack = start_stack(
            root / "stack", postgres_env, exits, workers=WORKERS, worker_limit=args.worker_limit
        )
        os.environ["PREFECT_API_URL"] = stack.prefect_api_url
        deploy_anchors(stack)
        print(f"1. trigger→completed latency, {args.runs} runs each")
        samples, pipeline_id = measure_latency(stack, args.runs)
        print(f"2. API read throughput, 64 connections, 2 x {args.api_requests} requests each")
        api = measure_api(stack, pipeline_id, root, exits, args.api_requests)
        print(
            f"3. a burst of {args.burst} triggers, {WORKERS} workers x limit {stack.worker_limit}"
        )
        meter = stack_meter(stack, cluster.pid)
        service_burst = measure_burst(
            stack, meter, args.burst, burst(stack, args.burst, clients=20)
        )
        print("   … and the same burst of the bare anchor, straight in Prefect")
        bare = measure_burst(stack, meter, args.burst, bare_burst(args.burst, clients=20))

    latency = {kind: describe(values) for kind, values in samples.items()}
    single_run_s = latency["service"]["median_s"]
    waves = math.ceil(args.burst / (WORKERS * stack.worker_limit))
    theoretical = waves * single_run_s
    bare_theoretical = waves * latency["anchor_warm"]["median_s"]
    report = {
        "machine": machine(),
        "topology": f"PostgreSQL, Prefect server, {WORKERS} workers (limit {stack.worker_limit}), API",
        "latency": latency,
        "latency_samples_s": {k: [round(v, 3) for v in vs] for k, vs in samples.items()},
        "latency_ratio": round(single_run_s / latency["anchor"]["median_s"], 3),
        "latency_ratio_same_launcher": round(single_run_s / latency["anchor_warm"]["median_s"], 3),
        "api": api,
        "api_ratio": round(
            api["service"]["requests_per_second"] / api["bare"]["requests_per_second"], 3
        ),
        "burst": {
            **service_burst,
            "theoretical_s": round(theoretical, 2),
            "waves": waves,
            "single_run_s": single_run_s,
            "bare_prefect": {
                **bare,
                "theoretical_s": round(bare_theoretical, 2),
                "single_run_s": latency["anchor_warm"]["median_s"],
                "ratio": round(bare["makespan_s"] / bare_theoretical, 3),
            },
            # this service's burst against the same burst of Prefect alone
            "makespan_vs_bare_prefect": round(service_burst["makespan_s"] / bare["makespan_s"], 3),
        },
        "burst_ratio": round(service_burst["makespan_s"] / theoretical, 3),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    chart(samples, args.output.with_name("latency.png"))
    print(f"\nwritten to {args.output} and {args.output.with_name('latency.png')}")
    for name, result in (("burst", service_burst), ("bare burst", bare)):
        if result["statuses"].get("completed", 0) != args.burst:
            raise SystemExit(f"{name}: not every run completed: {result['statuses']}")
    print(
        f"bench: latency_ratio={report['latency_ratio']} "
        f"latency_median_s={single_run_s} api_ratio={report['api_ratio']} "
        f"api_p99_ms={api['service']['p99_ms']} burst_ratio={report['burst_ratio']}"
    )


if __name__ == "__main__":
    main()
