"""docker-compose.yml, the Dockerfile and the PostgreSQL init script, checked without a Docker engine:
Debian's docker-compose 1.29.2 parses and validates the compose file (`config`), and the resolved
configuration is checked for what scaling and start-up order depend on."""

import glob
import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from app import healthcheck
from app.config import PROJECT_ROOT, Settings
from app.stack.env import SERVER_TUNING
from tests.support.postgres import postgres_cluster, server_bin_dir

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
INIT_SQL = PROJECT_ROOT / "deploy" / "postgres" / "10-databases.sql"
SERVICES = {"postgres", "prefect-server", "init", "prefect-worker", "api", "datadog-agent"}
APP_SERVICES = ("prefect-server", "init", "prefect-worker", "api")

docker_compose = shutil.which("docker-compose")
needs_docker_compose = pytest.mark.skipif(
    docker_compose is None,
    reason="docker-compose is missing: apt-get install --no-install-recommends docker-compose "
    "(.ci/run installs it)",
)


def compose(*args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    assert docker_compose is not None
    return subprocess.run(
        [docker_compose, "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin"},  # nothing from this shell leaks into the interpolation
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The configuration docker-compose resolves from the file and .env.example."""
    if docker_compose is None:
        pytest.skip("docker-compose is missing: apt-get install docker-compose (.ci/run does)")
    result = compose("config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@needs_docker_compose
def test_docker_compose_validates_the_file() -> None:
    result = compose("config", "-q")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@needs_docker_compose
def test_the_database_password_is_required(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("config", "-q", env_file=empty)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("set POSTGRES_PASSWORD in .env")


def test_every_variable_of_the_compose_file_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    listed = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^[A-Z0-9_]+=", line)
    }
    assert used == listed


def test_services_and_start_order(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == SERVICES
    depends = {name: service.get("depends_on") for name, service in services.items()}
    assert depends == {
        "postgres": None,
        "prefect-server": {"postgres": {"condition": "service_healthy"}},
        "init": {
            "postgres": {"condition": "service_healthy"},
            "prefect-server": {"condition": "service_healthy"},
        },
        "prefect-worker": {
            "prefect-server": {"condition": "service_healthy"},
            "init": {"condition": "service_completed_successfully"},
        },
        "api": {
            "prefect-server": {"condition": "service_healthy"},
            "init": {"condition": "service_completed_successfully"},
        },
        "datadog-agent": None,
    }
    # every service something waits for on `service_healthy` has a health check of its own
    for name in ("postgres", "prefect-server"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert services["init"]["command"] == [
        "sh",
        "-c",
        "alembic upgrade head && python app/pipeline/deploy.py",
    ]
    assert services["init"]["restart"] == "no"
    assert services["init"]["healthcheck"] == {"test": ["NONE"]}  # `disable: true`, resolved


def test_one_image_for_every_app_service(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert {services[name]["image"] for name in APP_SERVICES} == {"data-pipeline-service:latest"}
    assert services["api"]["command"][:2] == ["uvicorn", "app.main:app"]
    assert services["prefect-server"]["command"][:3] == ["prefect", "server", "start"]
    assert services["prefect-worker"]["command"] == [
        "python",
        "-m",
        "app.pipeline.worker",  # `prefect worker start` with the warm zygote beside it
        "--pool",
        "default",
        "--type",
        "process",
        "--limit",
        "4",
        "--with-healthcheck",
    ]


def test_the_worker_can_scale(resolved: dict[str, Any]) -> None:
    worker = resolved["services"]["prefect-worker"]
    # `--scale prefect-worker=N` needs no fixed name and no host port, and N workers share a pool
    assert "container_name" not in worker
    assert "ports" not in worker
    env = worker["environment"]
    assert (env["PREFECT_API_URL"], env["PREFECT_WORKER_QUERY_SECONDS"]) == (
        "http://prefect-server:4200/api",
        "5",
    )
    assert worker["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "app.healthcheck",
        "http://127.0.0.1:8080/health",
    ]


def test_environment_of_the_app(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    database_url = "postgresql+asyncpg://pipeline:change-me@postgres:5432/pipelines"
    for name in ("init", "prefect-worker", "api"):
        env = services[name]["environment"]
        assert (env["DATABASE_URL"], env["PIPELINE_DATA_DIR"], env["PREFECT_API_URL"]) == (
            database_url,
            "/data",
            "http://prefect-server:4200/api",
        ), name
        assert env["PREFECT_UI_URL"] == "http://localhost:4200"
    server_env = services["prefect-server"]["environment"]
    assert server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == (
        "postgresql+asyncpg://pipeline:change-me@postgres:5432/prefect"
    )
    assert services["prefect-server"]["ports"] == [{"published": 4200, "target": 4200}]
    assert services["api"]["ports"] == [{"published": 8000, "target": 8000}]


def test_the_prefect_server_is_tuned_as_make_up_tunes_it(resolved: dict[str, Any]) -> None:
    server_env = resolved["services"]["prefect-server"]["environment"]
    assert {name: server_env.get(name) for name in SERVER_TUNING} == SERVER_TUNING


def test_worker_and_api_share_the_data_volume(resolved: dict[str, Any]) -> None:
    services = resolved["services"]

    def data_mounts(name: str) -> list[str]:
        return [v for v in services[name].get("volumes", []) if v.split(":")[1] == "/data"]

    assert data_mounts("prefect-worker") == data_mounts("api") == ["pipeline-data:/data:rw"]
    assert (
        "volumes" not in services["prefect-server"] or services["prefect-server"]["volumes"] == []
    )
    assert set(resolved["volumes"]) == {"postgres-data", "pipeline-data", "datadog-run"}


def test_datadog_agent_is_optional(resolved: dict[str, Any]) -> None:
    agent = resolved["services"]["datadog-agent"]
    assert agent["profiles"] == ["datadog"]
    assert agent["ports"] == ["127.0.0.1:8126:8126/tcp", "127.0.0.1:8125:8125/udp"]
    env = agent["environment"]
    assert {
        k: env[k] for k in ("DD_APM_ENABLED", "DD_DOGSTATSD_NON_LOCAL_TRAFFIC", "DD_LOGS_ENABLED")
    } == {
        "DD_APM_ENABLED": "true",
        "DD_DOGSTATSD_NON_LOCAL_TRAFFIC": "true",
        "DD_LOGS_ENABLED": "true",
    }
    # no app service waits for it: without the profile the stack starts as it is
    assert all(
        "datadog-agent" not in (s.get("depends_on") or {}) for s in resolved["services"].values()
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: continuation lines joined, whitespace collapsed,
    comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for raw in joined.splitlines():
        words = raw.split()
        if words and not words[0].startswith("#"):
            instructions.append((words[0].upper(), " ".join(words[1:])))
    return instructions


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    froms = [args for op, args in instructions if op == "FROM"]
    assert froms == ["python:3.11-slim AS build", "python:3.11-slim"]
    runs = [args for op, args in instructions if op == "RUN"]
    assert "uv sync --frozen --no-dev" in runs
    assert "uv sync --frozen --no-dev --no-install-project" in runs
    final_stage = instructions[[op for op, _ in instructions].index("FROM", 1) :]
    users = [args for op, args in final_stage if op == "USER"]
    assert users == ["app"]  # the final image runs as a non-root user …
    assert 'useradd --uid "${APP_UID}"' in " ".join(runs)
    assert [args for op, args in instructions if op == "ARG"] == ["APP_UID=10001"]  # … uid 10001
    healthchecks = [args for op, args in final_stage if op == "HEALTHCHECK"]
    assert healthchecks == [
        "--interval=15s --timeout=5s --start-period=30s --retries=3 "
        'CMD ["python", "-m", "app.healthcheck"]'
    ]


def test_dockerignore_keeps_secrets_and_the_venv_out() -> None:
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".git", "var"} <= set(ignored)


@pytest.fixture
def http_server() -> Iterator[str]:
    """A local server answering 200 on /ok and 503 on anything else."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_exit_codes(http_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert healthcheck.main([f"{http_server}/ok"]) == 0
    assert healthcheck.main([f"{http_server}/down"]) == 1
    assert healthcheck.main(["http://127.0.0.1:9/health"]) == 1  # nothing listens
    monkeypatch.setenv("HEALTHCHECK_URL", f"{http_server}/ok")
    assert healthcheck.main([]) == 0


def psql_binary() -> str | None:
    """psql from PATH, else beside the server binaries (Debian's /usr/lib/postgresql/<v>/bin)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)
    return shutil.which("psql") or (candidates[0] if candidates else None)


def psql(url: str, *args: str) -> str:
    """Run psql as the postgres image's entrypoint runs init scripts; its unaligned output."""
    binary = psql_binary()
    assert binary is not None
    result = subprocess.run(
        [
            binary,
            "-v",
            "ON_ERROR_STOP=1",
            "--no-psqlrc",
            "-At",
            "--dbname",
            url,
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(
    server_bin_dir() is None or psql_binary() is None,
    reason="PostgreSQL server binaries or psql are missing: apt-get install postgresql",
)
def test_postgres_init_script_creates_both_databases_and_pg_trgm() -> None:
    """Run the init script as the postgres image does: psql on POSTGRES_DB, stop on error."""
    with postgres_cluster() as base_url:
        psql(f"{base_url}/postgres", "-c", 'CREATE DATABASE "pipelines"')  # POSTGRES_DB
        psql(f"{base_url}/pipelines", "-f", str(INIT_SQL))
        extensions = psql(
            f"{base_url}/prefect", "-c", "SELECT extname FROM pg_extension ORDER BY 1"
        )
        databases = psql(
            f"{base_url}/postgres",
            "-c",
            "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1",
        )
    assert extensions.split() == ["pg_trgm", "plpgsql"]
    assert databases.split() == ["pipelines", "postgres", "prefect"]


# what compose deliberately does not pass: the pool's name is fixed by the worker's command,
# drills are for tests, and the agent's ports are fixed by its datadog-agent service
NOT_PASSED = {
    "WORK_POOL_NAME",
    "PIPELINE_FAIL_STAGE",
    "PIPELINE_STAGE_DELAY",
    "DD_TRACE_AGENT_PORT",
    "DD_DOGSTATSD_PORT",
}


def test_every_setting_of_the_service_reaches_its_containers(tmp_path: Path) -> None:
    """.env is not in the image: a setting the compose file does not pass never reaches the
    service (retention, the deployment's concurrency limit, … once did not)."""
    app_env = set(yaml.safe_load(COMPOSE.read_text())["x-app"]["environment"])
    missing = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = {str(c) for c in alias.choices} if isinstance(alias, AliasChoices) else set()
        names = names or {name.upper()}
        if not names & (app_env | NOT_PASSED):
            missing.append(sorted(names)[0])
    assert missing == []
    if docker_compose is None:
        pytest.skip("docker-compose is missing: apt-get install docker-compose (.ci/run does)")
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text()
        .replace("\nPIPELINE_RETENTION_DAYS=\n", "\nPIPELINE_RETENTION_DAYS=7\n")
        .replace(
            "\nPIPELINE_DEPLOYMENT_CONCURRENCY_LIMIT=\n",
            "\nPIPELINE_DEPLOYMENT_CONCURRENCY_LIMIT=2\n",
        )
    )
    result = compose("config", env_file=env_file)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("init", "prefect-worker", "api"):
        env = services[name]["environment"]
        assert (
            env["PIPELINE_RETENTION_DAYS"],
            env["PIPELINE_DEPLOYMENT_CONCURRENCY_LIMIT"],
            env["PIPELINE_SEED"],
        ) == ("7", "2", ""), name
