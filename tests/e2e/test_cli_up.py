"""`pipeline up` starts the whole stack as `make up` does, and Ctrl-C stops all of it."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from tests.support.postgres import free_port

PIPELINE = str(Path(sys.executable).with_name("pipeline"))
READY_LINE = "Ctrl-C stops everything."


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


async def test_up_starts_the_stack_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    """Ctrl-C, a stop (SIGTERM) or the terminal closing (SIGHUP) stop every process; another
    Ctrl-C while it stops does not cut the stop short (here: SIGHUP, then Ctrl-C)."""
    env = _env(tmp_path)
    api_url = f"http://127.0.0.1:{free_port()}"
    prefect_port = free_port()
    up = await asyncio.create_subprocess_exec(
        PIPELINE,
        "up",
        f"--api-port={api_url.rsplit(':', 1)[1]}",
        f"--prefect-port={prefect_port}",
        f"--log-dir={tmp_path / 'logs'}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert up.stdout is not None
    printed: list[str] = []
    try:
        while READY_LINE not in printed:
            line = await asyncio.wait_for(up.stdout.readline(), 150)
            assert line, f"`pipeline up` ended before the stack was up: {printed}"
            printed.append(line.decode().strip())
        assert f"API          {api_url}   (OpenAPI docs: {api_url}/docs)" in printed
        assert f"dashboard    {api_url}/" in printed

        # the worker's first heartbeat can trail the API by a moment
        for _ in range(60):
            code, out, _ = await _pipeline(env, "--api-url", api_url, "doctor")
            if code == 0:
                break
            await asyncio.sleep(0.5)
        assert (code, out.splitlines()[-1]) == (0, "ready")
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGHUP)  # the terminal closed
            while (
                await asyncio.wait_for(up.stdout.readline(), 30)
            ).strip() != b"stopping \xe2\x80\xa6":
                pass
            up.send_signal(signal.SIGINT)  # Ctrl-C while it stops
        await asyncio.wait_for(up.communicate(), 90)
    assert up.returncode == 0
    with socket.socket() as probe:  # the Prefect server, stopped last, is gone too
        assert probe.connect_ex(("127.0.0.1", prefect_port)) != 0

    down = await _pipeline(env, "--api-url", api_url, "list")
    assert down == (
        3,
        "",
        f"error: cannot reach the API at {api_url}: connection refused; start it with `make up` "
        "(or `pipeline up`) or set PIPELINE_API_URL\n",
    )


async def test_up_refuses_a_port_already_taken(tmp_path: Path) -> None:
    """Another server there would answer the health checks as if it were the stack's own."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await _pipeline(
            _env(tmp_path), "up", f"--prefect-port={port}", f"--api-port={free_port()}"
        )
        # `make up` runs this: the same line, no traceback (once a RuntimeError's, exit 1)
        make_up = await _run(
            _env(tmp_path),
            sys.executable,
            "-m",
            "app.devstack",
            f"--prefect-port={port}",
            f"--api-port={free_port()}",
        )
    starting = "starting Prefect server, migrations, deployment, worker and API …\n"
    refused = (
        f"error: the stack did not start: port {port} on 127.0.0.1 is already in use (another "
        "Prefect server, a `make up` still running, or `docker compose up`?): stop it, or give the stack another port with "
        "--prefect-port\n"
    )
    assert (code, out, err) == (8, starting, refused)
    assert make_up == (8, starting, refused)
