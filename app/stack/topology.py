"""The local stack as processes — Prefect server, migrations, pool and deployment, worker(s) and
the API — started in order, each waited for, and stopped together, workers first; one stack per
state directory. `make up` (commands.py), the tests and the benchmarks start it."""

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app import scratch
from app.config import PROJECT_ROOT, get_settings
from app.stack import locks
from app.stack.env import ENV_FILE, process_env
from app.stack.ledger import Ledger, Written
from app.stack.processes import Port, Process, in_stop_order, refuse_taken_ports
from app.stack.up_command import stack_settings, up_command

STATE_DIR = PROJECT_ROOT / "var"  # the database, Prefect's home, run files, logs, unless configured
DEFAULT_PREFECT_PORT, DEFAULT_API_PORT = 4200, 8000
DEFAULT_WORKERS, DEFAULT_WORKER_LIMIT = 1, 4


@dataclass
class Stack:
    """The local topology: one Prefect server, `workers` workers on pool `default`, one API."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    host: str = "127.0.0.1"
    prefect_port: int = DEFAULT_PREFECT_PORT
    api_port: int = DEFAULT_API_PORT
    workers: int = DEFAULT_WORKERS
    worker_limit: int = DEFAULT_WORKER_LIMIT  # flow-run processes per worker: not hundreds
    state_dir: Path = STATE_DIR
    log_dir: Path = STATE_DIR / "log"  # its ledger too: one stack runs per log directory
    env_file: Path = ENV_FILE
    processes: list[Process] = field(default_factory=list)
    held: locks.Held = field(default_factory=locks.Held)  # database, run files, tmp

    @property
    def prefect_api_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}/api"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def tmp_dir(self) -> Path:
        """Its processes' TMPDIR: what Prefect and ddtrace leave there is removed as the next
        stack of this state directory starts (app/scratch.py)."""
        return self.state_dir / "tmp"

    @property
    def ledger(self) -> Ledger:
        # one per stack: two stacks of a checkout (on other ports) each keep their own
        about = {"api_port": self.api_port, "prefect_port": self.prefect_port}
        return Ledger(self.log_dir / f"processes-{self.api_port}.json", about)

    def process_env(self) -> dict[str, str]:
        """The environment every process shares: always the same, configured Prefect server."""
        return process_env(
            self.env,
            prefect_api_url=self.prefect_api_url,
            state_dir=self.state_dir,
            tmp_dir=self.tmp_dir,
            env_file=self.env_file,
        )

    def start(self) -> None:
        """Start everything and wait until each part answers; on any failure stop what started.
        Refused (a stack running, a port taken, a lock held), it leaves no log directory behind."""
        self.refuse_a_running_stack()
        # a port already taken would look like success: someone else's server answering
        refuse_taken_ports(
            self.host,
            [
                Port(self.prefect_port, "Prefect server", "PREFECT_PORT"),
                Port(self.api_port, "API", "API_PORT"),
            ],
            lambda moved: self.up_command(
                prefect_port=moved.get("PREFECT_PORT"), api_port=moved.get("API_PORT")
            ),
        )
        self.held = locks.claim(self.process_env())
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._empty_tmp_dir()
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

    def refuse_a_running_stack(self) -> None:
        """One stack per state: a second one shared the first one's database, Prefect server
        database and run files (both stacks' workers took the same flow run). The processes a
        killed stack left running are stopped, whichever its ports."""
        for ledger in Ledger.all_in(self.log_dir):
            for stopped in ledger.stop_leftovers():
                print(f"stopped {stopped}, left running by a stack that was killed", flush=True)
            if (running := ledger.running()) is not None:
                raise RuntimeError(self._runs_already(ledger.path, running))

    def _runs_already(self, ledger: Path, running: Written) -> str:
        api = running.port("api") or self.api_port
        prefect = running.port("prefect") or self.prefect_port
        state = "" if self.state_dir == STATE_DIR else f" STATE_DIR={shown_path(self.state_dir)}"
        return (
            f"a stack of this state directory runs already ({shown_path(ledger)}: process "
            f"{running.stack['pid']}, API on port {api}, Prefect server on port {prefect}); a second "
            "one would share its database, Prefect server and run files: stop it first (Ctrl-C "
            f"where it runs, or `make down{state}`), or give this one a state directory of its own "
            f"and other ports: `make up STATE_DIR=var-2 API_PORT={max(self.api_port, api + 1)} "
            f"PREFECT_PORT={max(self.prefect_port, prefect + 1)}`"
        )

    def up_command(self, *, prefect_port: int | None = None, api_port: int | None = None) -> str:
        """The command that starts this stack, with the settings the user gave (those not at
        their defaults), on `prefect_port` and `api_port` when given."""
        prefect_port, api_port = prefect_port or self.prefect_port, api_port or self.api_port
        return up_command(
            stack_settings(
                state_dir=None if self.state_dir == STATE_DIR else shown_path(self.state_dir),
                prefect_port=None if prefect_port == DEFAULT_PREFECT_PORT else prefect_port,
                api_port=None if api_port == DEFAULT_API_PORT else api_port,
                workers=None if self.workers == DEFAULT_WORKERS else self.workers,
                worker_limit=None
                if self.worker_limit == DEFAULT_WORKER_LIMIT
                else self.worker_limit,
                log_dir=None
                if self.log_dir == self.state_dir / "log"
                else shown_path(self.log_dir),
            )
        )

    def _empty_tmp_dir(self) -> None:
        """Held by this stack while it runs, shared with any other using it (tests' stacks);
        emptied first when none does and no process left running uses it."""
        fd, removed = scratch.share(self.tmp_dir)
        self.held.files.append(fd)
        if removed:
            print(
                f"removed {removed} entr{'y' if removed == 1 else 'ies'} from "
                f"{shown_path(self.tmp_dir)}, left by processes that are gone",
                flush=True,
            )

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
        """Stop every process this stack started, in their stop order (processes.in_stop_order),
        one at a time."""
        while self.processes:
            process = in_stop_order(self.processes, lambda p: p.name)[0]
            process.stop()  # interrupted, a stop called again starts here again
            self.processes.remove(process)
            self.ledger.write(self.processes)
        locks.release(self.held)

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


def _prefect() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def shown_path(path: Path) -> Path:
    """A path as messages show it: relative to the project's root when the command runs there
    (`make`'s), else whole (`pipeline up` from another directory)."""
    here = Path.cwd().resolve() == Path(PROJECT_ROOT).resolve()
    return path.relative_to(PROJECT_ROOT) if here and path.is_relative_to(PROJECT_ROOT) else path
