"""`make up`: the whole stack as local processes — Prefect server, migrations, pool and deployment,
worker(s) and the API — stopped together, in reverse order, on Ctrl-C. Tests start the same stack."""

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.config import PROJECT_ROOT, get_settings
from app.processes import (
    Ledger,
    Process,
    ignore_stop_signals,
    on_stop_signal,
    raise_interrupt,
    refuse_taken_port,
)

# The Prefect server's settings for bursts of runs (docker-compose.yml sets the same):
# - its task-run recorder writes each task-run event in a transaction of its own by default
#   (batch size 1): ~22% of the server's CPU per flow run. Batches of up to 50, flushed every
#   second, cut the server's CPU per run by a quarter; task runs show up within ~1 s;
# - its PostgreSQL pool keeps 5 connections by default: under a burst its services and requests
#   hold more, and each one past 5 was opened and closed again — a new backend, every statement
#   prepared afresh. With 20 kept, a 100-run burst used 0.94 → 0.74 CPU-s per run on the
#   machine (PostgreSQL 0.13 → 0.05, the server 0.32 → 0.25). SQLite ignores it.
SERVER_TUNING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
}


@dataclass
class Stack:
    """The local topology: one Prefect server, `workers` workers on pool `default`, one API."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    host: str = "127.0.0.1"
    prefect_port: int = 4200
    api_port: int = 8000
    workers: int = 1
    worker_limit: int = 4  # flow-run processes per worker; a burst must not fork hundreds
    log_dir: Path = PROJECT_ROOT / "var" / "log"
    processes: list[Process] = field(default_factory=list)

    @property
    def prefect_api_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}/api"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def ledger(self) -> Ledger:
        # one per stack: two stacks of a checkout (on other ports) each keep their own
        return Ledger(self.log_dir / f"processes-{self.api_port}.json")

    def process_env(self) -> dict[str, str]:
        """The environment every process shares: always the same, configured Prefect server."""
        env = {**SERVER_TUNING, **self.env}
        env.update(
            PREFECT_API_URL=self.prefect_api_url,
            PREFECT_UI_API_URL=env.get("PREFECT_UI_API_URL", self.prefect_api_url),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_EPHEMERAL_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS=env.get("PREFECT_WORKER_QUERY_SECONDS", "1"),
            PREFECT_HOME=env.get("PREFECT_HOME", str(PROJECT_ROOT / "var" / "prefect")),
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self) -> None:
        """Start everything and wait until each part answers; on any failure stop what started."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for stopped in self.ledger.stop_leftovers():
            print(f"stopped {stopped}, left running by a stack that was killed", flush=True)
        # a port already taken would look like success: someone else's server answering
        refuse_taken_port(self.host, self.prefect_port, "Prefect server", "--prefect-port")
        refuse_taken_port(self.host, self.api_port, "API", "--api-port")
        try:
            # the Prefect server migrates its database as it starts: ours is migrated and the
            # API started meanwhile (neither needs Prefect; the API's watchdog waits for it)
            self._spawn("prefect-server", self._server_argv())
            self._run("migrate", [sys.executable, "-m", "alembic", "upgrade", "head"])
            self._spawn(
                "api",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "app.main:app",
                    "--http",
                    "app.serving:BoundedHttpTools",
                    "--host",
                    self.host,
                    "--port",
                    str(self.api_port),
                    "--no-access-log",
                ],
            )
            self._wait_http("prefect-server", f"{self.prefect_api_url}/health", timeout=90)
            self._run("deploy", [sys.executable, str(PROJECT_ROOT / "app/pipeline/deploy.py")])
            for number in range(1, self.workers + 1):
                self.start_worker(number)
            self._wait_http("api", f"{self.api_url}/health", timeout=60)
        except BaseException:
            self.stop()
            raise

    def start_server(self) -> Process:
        """The Prefect server (UI included), once it answers /api/health."""
        server = self._spawn("prefect-server", self._server_argv())
        self._wait_http("prefect-server", f"{self.prefect_api_url}/health", timeout=90)
        return server

    def _server_argv(self) -> list[str]:
        return [
            _prefect(),
            "server",
            "start",
            "--host",
            self.host,
            "--port",
            str(self.prefect_port),
        ]

    def stop_process(self, name: str) -> None:
        """Stop one of the stack's processes (tests: a server outage, a dead worker)."""
        process = next(p for p in self.processes if p.name == name)
        self.processes.remove(process)
        process.stop()
        self.ledger.write(self.processes)

    def start_worker(self, number: int) -> Process:
        # the pool deploy.py (run with this stack's environment) puts the deployment in
        pool = self.env.get("WORK_POOL_NAME") or get_settings().work_pool_name
        return self._spawn(
            f"worker-{number}",
            [
                sys.executable,
                "-m",
                "app.pipeline.worker",
                "--pool",
                pool,
                "--type",
                "process",
                "--name",
                f"worker-{number}-{os.getpid()}",
                "--limit",
                str(self.worker_limit),
            ],
        )

    def stop(self) -> None:
        """Stop every process this stack started: its workers first, then the others newest
        first. A worker stopped after a Prefect server restarted (so newer) once spent its whole
        10 s grace trying to tell the stopped server that it stops."""
        while self.processes:
            workers = [p for p in self.processes if p.name.startswith("worker-")]
            process = workers[-1] if workers else self.processes[-1]
            process.stop()  # interrupted, a stop called again starts here again
            self.processes.remove(process)
            self.ledger.write(self.processes)

    def _spawn(self, name: str, argv: list[str]) -> Process:
        log = (self.log_dir / f"{name}.log").open("ab")
        popen = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=self.process_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        process = Process(name, popen, log)
        self.processes.append(process)
        self.ledger.write(self.processes)
        return process

    def _run(self, name: str, argv: list[str]) -> None:
        result = subprocess.run(
            argv,
            cwd=PROJECT_ROOT,
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        (self.log_dir / f"{name}.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(
                f"{name} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def _wait_http(self, name: str, url: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = next(p for p in reversed(self.processes) if p.name == name)
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.popen.returncode}; see {process.log.name}"
                )
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise TimeoutError(
            f"{name} did not answer {url} within {timeout:.0f} s; see {process.log.name}"
        )


# exit codes, as `pipeline up` documents them (app/cli/client.py ExitCode)
STACK_FAILED = 8
INTERRUPTED = 130


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def _prefect() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def main(argv: list[str] | None = None) -> None:
    """Start the stack, print where everything is, and stop it all on Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--worker-limit", type=int, default=4, help="concurrent flow runs per worker"
    )
    parser.add_argument("--prefect-port", type=_port, default=4200)
    parser.add_argument("--api-port", type=_port, default=8000)
    parser.add_argument("--log-dir", type=Path, default=PROJECT_ROOT / "var" / "log")
    args = parser.parse_args(argv)
    stack = Stack(
        workers=args.workers,
        worker_limit=args.worker_limit,
        prefect_port=args.prefect_port,
        api_port=args.api_port,
        log_dir=args.log_dir,
    )

    on_stop_signal(raise_interrupt)
    print("starting Prefect server, migrations, deployment, worker and API …", flush=True)
    started = False
    try:
        stack.start()
        started = True
        print(
            f"\n  API          {stack.api_url}   (OpenAPI docs: {stack.api_url}/docs)\n"
            f"  dashboard    {stack.api_url}/\n"
            f"  Prefect UI   http://{stack.host}:{stack.prefect_port}\n"
            f"  Prefect API  {stack.prefect_api_url}\n"
            f"  logs         {stack.log_dir}/*.log\n"
            f"  run files    {get_settings().data_dir / 'runs'}/<run id>/\n\nCtrl-C stops everything.",
            flush=True,
        )
        while all(p.popen.poll() is None for p in stack.processes):
            time.sleep(0.5)
        dead = [p.name for p in stack.processes if p.popen.poll() is not None]
        print(f"{', '.join(dead)} exited; stopping the stack", file=sys.stderr)
        raise SystemExit(STACK_FAILED)
    except KeyboardInterrupt:
        print("\nstopping …", flush=True)
        if not started:  # interrupted before it was up: not the normal stop
            raise SystemExit(INTERRUPTED) from None
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        if started:
            raise
        # a part did not start (a port taken, a part that never answered): what, in one line
        print(f"error: the stack did not start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(STACK_FAILED) from None
    finally:
        # its processes run in sessions of their own: only this stop reaches them, so a second
        # Ctrl-C must not cut it short
        ignore_stop_signals()
        stack.stop()


if __name__ == "__main__":
    main()
