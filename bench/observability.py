"""What Datadog costs a run: trigger→completed and stage compute time, tracing+metrics on vs off.

Two stacks side by side (Prefect server, worker, API on SQLite): one without Datadog, one reporting
to Datadog's test agent (ddapm-test-agent, a dev dependency) and a DogStatsD socket. Runs alternate
between them, one at a time, so both see the same machine. Not part of CI: `make bench-observability`.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from app.config import PROJECT_ROOT
from app.stack.topology import Stack
from bench.stack import free_port, start_stack

RESULTS = PROJECT_ROOT / "bench" / "results" / "observability.json"


@dataclass
class Sample:
    mode: str
    trigger_to_completed_s: float
    stage_compute_s: float


def _start_agent(workdir: Path, exits: ExitStack) -> int:
    """Datadog's test agent, standing in for the real one; returns its trace port."""
    port = free_port()
    log = exits.enter_context((workdir / "agent.log").open("wb"))
    agent = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ddapm-test-agent")),
            f"--port={port}",
            f"--otlp-http-port={free_port()}",
            f"--otlp-grpc-port={free_port()}",
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    exits.callback(agent.wait, 10)
    exits.callback(agent.terminate)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/test/traces", timeout=2)
            return port
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"ddapm-test-agent did not start; see {workdir / 'agent.log'}")


def _start_statsd_sink(exits: ExitStack) -> int:
    """A UDP socket that drains DogStatsD datagrams, as the agent would."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    exits.callback(sock.close)

    def drain() -> None:
        while True:
            try:
                sock.recv(65535)
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    return int(sock.getsockname()[1])


def _run_once(stack: Stack, mode: str, record_count: int) -> Sample:
    with httpx.Client(base_url=stack.api_url, timeout=60) as api:
        started = time.monotonic()
        created = api.post(
            "/api/pipelines",
            json={"name": f"bench-{mode}", "record_count": record_count, "trigger": True},
        )
        created.raise_for_status()
        pipeline_id = created.json()["id"]
        while True:
            body = api.get(f"/api/pipelines/{pipeline_id}").json()
            if body["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    if body["status"] != "completed":
        raise RuntimeError(f"{mode} run ended {body['status']}: {body['latest_run']['error']}")
    stages = body["latest_run"]["stages"]
    return Sample(mode, elapsed, sum(stage["duration_seconds"] for stage in stages))


def _overhead(samples: list[Sample], field: str) -> tuple[float, float, float]:
    off = statistics.median(getattr(s, field) for s in samples if s.mode == "off")
    on = statistics.median(getattr(s, field) for s in samples if s.mode == "on")
    return off, on, (on - off) / off * 100


def _measure(root: Path, runs: int, records: int) -> list[Sample]:
    with ExitStack() as exits:
        (root / "agent").mkdir()
        print("starting the test agent and two stacks (Datadog off / on) …", flush=True)
        datadog_env = {
            "DD_AGENT_HOST": "127.0.0.1",
            "DD_TRACE_AGENT_PORT": str(_start_agent(root / "agent", exits)),
            "DD_DOGSTATSD_PORT": str(_start_statsd_sink(exits)),
            "DD_ENV": "bench",
        }
        stacks = {
            "off": start_stack(root / "off", {}, exits),
            "on": start_stack(root / "on", datadog_env, exits),
        }
        for mode, stack in stacks.items():  # warm-up: first imports, deployment lookup
            _run_once(stack, mode, 1000)
        samples: list[Sample] = []
        for round_ in range(runs):
            for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                sample = _run_once(stacks[mode], mode, records)
                samples.append(sample)
                print(
                    f"  {mode:>3}: trigger→completed {sample.trigger_to_completed_s:6.2f} s, "
                    f"stages {sample.stage_compute_s:6.2f} s",
                    flush=True,
                )
        return samples


INERT_HOOK = """
import time
from app.pipeline import telemetry
started = time.perf_counter()
for _ in range(100_000):
    with telemetry.stage("process", pipeline_id=1, run_id=2, attempt=1) as stage:
        stage.records(1)
print((time.perf_counter() - started) / 100_000 * 1e6)
"""


def _inert_hook_us() -> float:
    """What a stage hook costs with Datadog off: µs per call, in a fresh interpreter without DD_*."""
    done = subprocess.run(
        [sys.executable, "-c", INERT_HOOK],
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("DD_")},
        capture_output=True,
        text=True,
        check=True,
    )
    return round(float(done.stdout), 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per mode (default 5)")
    parser.add_argument("--records", type=int, default=200_000, help="records per run")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="bench-observability-"))
    try:
        samples = _measure(root, args.runs, args.records)
    except BaseException:
        print(f"stopped; the stacks' logs are kept in {root}/{{off,on}}/logs", file=sys.stderr)
        raise
    shutil.rmtree(root, ignore_errors=True)

    summary = {}
    print(f"\nmedians over {args.runs} runs of {args.records:,} records each:")
    for field, label in (
        ("trigger_to_completed_s", "trigger→completed"),
        ("stage_compute_s", "stage compute"),
    ):
        off, on, percent = _overhead(samples, field)
        summary[field] = {"off": off, "on": on, "overhead_percent": percent}
        print(f"  {label:<18} off {off:6.2f} s   on {on:6.2f} s   overhead {percent:+5.1f} %")
    inert_us = _inert_hook_us()
    print(f"  a stage hook with Datadog off: {inert_us} µs per call")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "runs_per_mode": args.runs,
                "records": args.records,
                "median": summary,
                "inert_stage_hook_us": inert_us,
                "samples": [asdict(s) for s in samples],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
