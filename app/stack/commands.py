"""`make up`: the whole stack (topology.py) as local processes, stopped together on Ctrl-C or
`make down`; `make doctor` checks it. One stack runs per state directory (`--state-dir`)."""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from dotenv import dotenv_values

from app.access_settings import DEFAULT_PORTS
from app.config import PROJECT_ROOT, get_settings
from app.shown import shown_prefect_url
from app.stack import settings_check
from app.stack.ledger import Ledger, Written
from app.stack.processes import ignore_stop_signals, on_stop_signal, raise_interrupt
from app.stack.topology import DEFAULT_WORKER_LIMIT, DEFAULT_WORKERS, STATE_DIR, Stack, shown_path

# exit codes, as `pipeline up` documents them (app/cli/client.py ExitCode)
CHECK_FAILED = 1
STACK_FAILED = 8
INTERRUPTED = 130


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def main(argv: list[str] | None = None) -> None:
    """`up` (the default): start the stack, print where everything is, and stop it all on Ctrl-C
    or SIGTERM; `down`: stop the one running with this state; `doctor`: check it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", choices=("up", "down", "doctor"), default="up")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument(
        "--worker-limit",
        type=int,
        default=DEFAULT_WORKER_LIMIT,
        help="concurrent flow runs per worker",
    )
    parser.add_argument("--prefect-port", type=_port, help="default 4200")
    parser.add_argument("--api-port", type=_port, help="default 8000")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the stack keeps its SQLite database, Prefect home, run files and logs unless "
        "configured otherwise (default var)",
    )
    parser.add_argument("--log-dir", type=Path, help="default <state dir>/log")
    args = parser.parse_args(argv)
    state_dir = (args.state_dir or STATE_DIR).absolute()
    log_dir = (args.log_dir or state_dir / "log").absolute()
    if args.command == "down":
        down(log_dir)
        return
    # `make doctor` checks the stack running with this state, on whichever ports it runs
    ledgers = Ledger.all_in(log_dir) if args.command == "doctor" else []
    running = next((w for ledger in ledgers if (w := ledger.running()) is not None), None)
    # or what a killed `make up` left running there: its processes, on its ports
    killed = next((w for ledger in ledgers if (w := ledger.read()) and w.left_behind), None)
    ran = running or killed
    stack = Stack(
        workers=args.workers,
        worker_limit=args.worker_limit,
        prefect_port=args.prefect_port or _port_of(ran, "prefect") or 4200,
        api_port=args.api_port or _port_of(ran, "api") or 8000,
        state_dir=state_dir,
        log_dir=log_dir,
    )
    given = ran is not None or args.prefect_port or args.state_dir or args.log_dir
    env = stack.process_env() if given or args.command == "up" else dict(os.environ)
    if problem := settings_check.refusal(env):
        print(f"error: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(STACK_FAILED if args.command == "up" else CHECK_FAILED)
    if args.command == "doctor":
        if running is None and killed is not None:
            print(_left_behind(stack, killed), flush=True)
        elif running is None:
            prefect_url = stack.prefect_api_url if given else get_settings().prefect_api_url
            say_none_runs(stack, prefect_url, named=bool(given))
        raise SystemExit(doctor(env))
    up(stack)


def say_none_runs(stack: Stack, prefect_url: str, *, named: bool) -> None:
    """`make doctor` of a state directory where no stack runs says so first, and how to start
    it: its checks alone read as a stack that runs with parts missing. Of a state directory or
    port `named`, what answers there is another stack's, whose Prefect server its checks ask."""
    where = {"API": stack.api_url, "Prefect server": shown_prefect_url(prefect_url)}
    answering = {what: url for what, url in where.items() if _answers(f"{url}/health")}
    if not answering:
        print(
            f"no stack runs here (STATE_DIR={shown_path(stack.state_dir)}): nothing answers at "
            + " or ".join(f"{url} ({what})" for what, url in where.items())
            + f"; start it with {stack.up_command()}. Its checks:",
            flush=True,
        )
    elif named:
        print(_not_its_stack(stack, answering), flush=True)


def _left_behind(stack: Stack, killed: Written) -> str:
    """The processes a killed `make up` of this state directory left running: this stack's, not
    another's (they answer on its ports), and how to stop them."""
    state = (
        ""
        if stack.state_dir == STATE_DIR
        else f" STATE_DIR={shlex.quote(str(shown_path(stack.state_dir)))}"
    )
    left = ", ".join(f"{e['name']} ({e['pid']})" for e in killed.left_behind)
    return (
        f"the stack of STATE_DIR={shown_path(stack.state_dir)} was killed (its process "
        f"{killed.stack['pid']} is gone) and left running {left}, which the checks below ask; "
        f"`make down{state}` stops them, and {stack.up_command()} stops them and starts the "
        "stack again. Its checks:"
    )


def _not_its_stack(stack: Stack, answering: dict[str, str]) -> str:
    """What answers where the named stack, which does not run, would: not that stack."""
    asked = (
        "; the Prefect checks below ask that server, not this stack's"
        if "Prefect server" in answering
        else ""
    )
    return (
        f"no stack of STATE_DIR={shown_path(stack.state_dir)} runs (its ledger in "
        f"{shown_path(stack.log_dir)} names none running), yet something answers at "
        + " and ".join(f"{url} ({what})" for what, url in answering.items())
        + ": another stack, `docker compose up` or another program, not this state "
        f"directory's{asked}. Start this one on other ports with "
        + stack.up_command(
            prefect_port=_next(stack.prefect_port) if "Prefect server" in answering else None,
            api_port=_next(stack.api_port) if "API" in answering else None,
        )
        + ". Its checks:"
    )


def _next(port: int) -> int:
    """Another port to suggest, as a taken one is moved (app/stack/processes.py)."""
    return port + 1 if port < 65535 else port - 1


def _answers(url: str) -> bool:
    """Something answers HTTP there, whatever it says."""
    try:
        httpx.get(url, timeout=2)
    except (httpx.TransportError, httpx.InvalidURL):
        return False
    return True


def _port_of(running: Written | None, name: str) -> int | None:
    """The port of the stack running with this state (`make doctor` checks that one)."""
    return running.port(name) if running is not None else None


def banner(stack: Stack) -> str:
    """Where the started stack answers. Under a proxy's prefix (UVICORN_ROOT_PATH) the pages and
    the API docs are written for the proxy, and are opened through it; the API answers here too."""
    env = stack.process_env()
    root = env.get("UVICORN_ROOT_PATH", "").rstrip("/")
    docs, dashboard = f"{stack.api_url}/docs", f"{stack.api_url}/"
    if root:
        docs = f"through your proxy, at {root}/docs"
        dashboard = f"through your proxy, at {root}/ (UVICORN_ROOT_PATH={root})"
    return (
        f"\n  API          {stack.api_url}   (OpenAPI docs: {docs})\n"
        f"  dashboard    {dashboard}\n"
        f"  Prefect UI   http://{stack.host}:{stack.prefect_port}\n"
        f"  Prefect API  {stack.prefect_api_url}\n"
        f"  logs         {stack.log_dir}/*.log\n"
        f"  run files    {_data_dir(env) / 'runs'}/<run id>/\n\n"
        + "".join(f"{line}\n\n" for line in _ui_elsewhere(stack, env))
        + "Ctrl-C (or `make down`) stops everything."
    )


# what a Prefect UI address at another port than the stack's server does wrong
_UI_ADDRESSES = {
    "PREFECT_UI_URL": "links to runs in Prefect's UI open port {port}",
    "PREFECT_UI_API_URL": "Prefect's UI asks port {port} for what it shows",
}


def _ui_elsewhere(stack: Stack, env: Mapping[str, str]) -> list[str]:
    """Prefect UI addresses of this machine at another port than the stack's Prefect server
    (.env.example's localhost:4200 under `make up PREFECT_PORT=4201`), given in the environment
    or in .env, where the processes read them too: every link to a run in Prefect's UI, in the
    API's answers and on the dashboard, opened that other port."""
    from_file = dotenv_values(stack.env_file)
    warnings = []
    for name, wrong in _UI_ADDRESSES.items():
        value = env.get(name) or from_file.get(name) or ""
        try:
            parts = urlsplit(value)
            host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:  # a port that is no number: the settings check said so
            continue
        if host in ("localhost", "127.0.0.1", "::1") and port != stack.prefect_port:
            warnings.append(
                f"warning: {name}={value} is not this stack's Prefect server (port "
                f"{stack.prefect_port}): {wrong.format(port=port)}; remove it from .env (the "
                "stack sets its own) or give it this stack's port"
            )
    return warnings


def up(stack: Stack) -> None:
    on_stop_signal(raise_interrupt)
    print("starting Prefect server, migrations, deployment, worker and API …", flush=True)
    started = False
    try:
        stack.start()
        started = True
        print(banner(stack), flush=True)
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


def down(log_dir: Path) -> None:
    """`make down`: stop the stack running with this state as its Ctrl-C would (one started in
    the background, or in another terminal), and what a killed one left running."""
    stopped = False
    for ledger in Ledger.all_in(log_dir):
        if (running := ledger.running()) is not None:
            print(f"stopping the stack of process {running.stack['pid']} …", flush=True)
            ledger.stop_stack(running)
            stopped = True
        for left in ledger.stop_leftovers():
            print(f"stopped {left}, left running by a stack that was killed", flush=True)
            stopped = True
    print("stopped" if stopped else f"no stack runs with its ledger in {shown_path(log_dir)}")


def doctor(env: dict[str, str]) -> int:
    """`make doctor`: the readiness checks, in the environment the stack's processes have. It
    makes nothing (a mistyped STATE_DIR must not become a new, empty stack): for a stack that
    never ran, Prefect gets a throwaway home rather than warn it could not make the stack's."""
    with tempfile.TemporaryDirectory(prefix="pipeline-doctor-") as spare:
        home = env.get("PREFECT_HOME")
        if home and not Path(home).parent.exists():
            env = {**env, "PREFECT_HOME": spare}
        return subprocess.run(
            [sys.executable, "-m", "app.readiness"], cwd=PROJECT_ROOT, env=env, check=False
        ).returncode


def _data_dir(env: Mapping[str, str]) -> Path:
    configured = next(
        (env[name] for name in ("PIPELINE_DATA_DIR", "DATA_DIR") if env.get(name)), ""
    )
    return PROJECT_ROOT / configured if configured else get_settings().data_dir


if __name__ == "__main__":
    main()
