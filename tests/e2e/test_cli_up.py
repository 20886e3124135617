"""`pipeline up` starts the whole stack as `make up` does, and Ctrl-C stops all of it."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from tests.support.postgres import free_port

PIPELINE = str(Path(sys.executable).with_name("pipeline"))
READY_LINE = "Ctrl-C (or `make down`) stops everything."


def _env(root: Path) -> dict[str, str]:
    """The test process's environment, with a fresh database, data and Prefect home."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PIPELINE_API_KEY", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{root / 'pipelines.db'}",
        PIPELINE_DATA_DIR=str(root / "data"),
        PREFECT_HOME=str(root / "prefect-home"),
        COLUMNS="200",
        NO_COLOR="1",
    )
    return env


async def _pipeline(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await _run(env, PIPELINE, *args)


async def _run(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _until_ready(output: asyncio.StreamReader) -> list[str]:
    """The lines a starting stack prints, up to the one saying it is up (within 150 s each)."""
    printed: list[str] = []
    while READY_LINE not in printed:
        line = await asyncio.wait_for(output.readline(), 150)
        assert line, f"the stack ended before it was up: {printed}"
        printed.append(line.decode().strip())
    return printed


async def test_up_runs_a_stack_of_its_own_state_directory_and_down_stops_all_of_it(
    tmp_path: Path,
) -> None:
    """`pipeline up --state-dir` (`make up STATE_DIR=…`): the database, Prefect's home, run files
    and logs under it; a second stack of the same state directory is refused (two once shared
    them all); both doctors pass on the running stack; `make down` stops it as Ctrl-C does, and
    a Ctrl-C while it stops does not cut the stop short (SIGHUP's stop: tests/unit/test_processes.py).
    One stack for all of it: each start costs this suite most of a minute."""
    state = tmp_path / "state"
    unset = ("DATABASE_URL", "PIPELINE_DATA_DIR", "PREFECT_HOME", "PIPELINE_API_KEY")
    env = {name: value for name, value in _env(tmp_path).items() if name not in unset}
    api_port, prefect_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    stack = (sys.executable, "-m", "app.stack.commands", f"--state-dir={state}")
    up = await asyncio.create_subprocess_exec(
        PIPELINE,
        "up",
        f"--api-port={api_port}",
        f"--prefect-port={prefect_port}",
        f"--state-dir={state}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert up.stdout is not None
    try:
        printed = await _until_ready(up.stdout)
        assert f"API          {api_url}   (OpenAPI docs: {api_url}/docs)" in printed
        assert f"dashboard    {api_url}/" in printed
        assert f"run files    {state / 'data' / 'runs'}/<run id>/" in printed

        # other ports (never bound: the refusal comes first), kept in the way out it names
        second = await _run(
            env, *stack, f"--api-port={api_port + 7}", f"--prefect-port={prefect_port + 7}"
        )
        assert second == (
            8,
            "starting Prefect server, migrations, deployment, worker and API …\n",
            f"error: the stack did not start: a stack of this state directory runs already "
            f"({state / 'log' / f'processes-{api_port}.json'}: process {up.pid}, API on port "
            f"{api_port}, Prefect server on port {prefect_port}); a second one would share its "
            "database, Prefect server and run files: stop it first (Ctrl-C where it runs, or "
            f"`make down STATE_DIR={state}`), or give this one a state directory of its own and "
            f"other ports: `make up STATE_DIR=var-2 API_PORT={api_port + 7} "
            f"PREFECT_PORT={prefect_port + 7}`\n",
        )

        for _ in range(60):  # the worker's first heartbeat can trail the API by a moment
            code, out, _ = await _run(env, *stack[:3], "doctor", stack[3])
            if code == 0:
                break
            await asyncio.sleep(0.5)
        assert code == 0, out
        assert f"ok    prefect_api    http://127.0.0.1:{prefect_port}/api reachable" in (
            out.splitlines()
        )
        code, out, _ = await _pipeline(env, "--api-url", api_url, "doctor")
        assert (code, out.splitlines()[-1]) == (0, "ready")

        down = asyncio.create_task(_run(env, *stack[:3], "down", stack[3]))
        while (
            await asyncio.wait_for(up.stdout.readline(), 30)
        ).strip() != b"stopping \xe2\x80\xa6":
            pass
        up.send_signal(signal.SIGINT)  # Ctrl-C while it stops
        assert await down == (0, f"stopping the stack of process {up.pid} …\nstopped\n", "")
        rest, _ = await asyncio.wait_for(up.communicate(), 30)
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGINT)
            await asyncio.wait_for(up.communicate(), 90)
    assert (up.returncode, rest.decode().strip()) == (0, "")
    for port in (api_port, prefect_port):  # the Prefect server, stopped last, is gone too
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    # all in the state directory; the stack's locks stay, released (app/stack/locks.py)
    assert sorted(path.name for path in state.iterdir()) == [
        "data", "log", "pipelines.db", "pipelines.db.stack.lock", "prefect", "tmp"
    ]  # fmt: skip
    assert [path.name for path in (state / "data").iterdir()] == [".stack.lock"]
    # its processes' TMPDIR: a worker that stops removes its own directory, nothing else is left
    assert list((state / "tmp").iterdir()) == []
    assert list((state / "log").glob("processes-*.json")) == []

    refused = await _pipeline(env, "--api-url", api_url, "list")
    assert refused == (
        3,
        "",
        f"error: cannot reach the API at {api_url}: connection refused; start it with `make up` "
        "(or `pipeline up`) or set PIPELINE_API_URL\n",
    )


async def test_up_refuses_a_port_already_taken(tmp_path: Path) -> None:
    """Another server there would answer the health checks as if it were the stack's own. The
    message names the way to another port from make too (`make up --prefect-port` is make's),
    with the user's own state directory and API port (it once dropped them)."""
    state_dir, api_port = tmp_path / "state", free_port()
    state = f"--state-dir={state_dir}"  # no stack of the checkout's var/ in the way
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await _pipeline(
            _env(tmp_path), "up", f"--prefect-port={port}", f"--api-port={api_port}", state
        )
        # `make up` runs this: the same line, no traceback (once a RuntimeError's, exit 1)
        make_up = await _run(
            _env(tmp_path),
            sys.executable,
            "-m",
            "app.stack.commands",
            f"--prefect-port={port}",
            f"--api-port={api_port}",
            state,
        )
    starting = "starting Prefect server, migrations, deployment, worker and API …\n"
    refused = (
        f"error: the stack did not start: port {port} on 127.0.0.1 is already in use (another "
        "Prefect server, a `make up` of another checkout or state directory, or `docker compose "
        f"up`?): stop it, or give the stack another port: `make up STATE_DIR={state_dir} "
        f"PREFECT_PORT={port + 1} API_PORT={api_port}` (`pipeline up --state-dir {state_dir} "
        f"--prefect-port {port + 1} --api-port {api_port}`)\n"
    )
    assert (code, out, err) == (8, starting, refused)
    assert make_up == (8, starting, refused)
