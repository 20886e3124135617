"""GET /ready shows where the database and Prefect are, never their credentials, and only to whom
may read (API_KEYS_FOR_READS); GET /health stays open to the containers' health checks."""

import httpx

from tests.conftest import Configure

UNREACHABLE = (
    "Prefect API at http://127.0.0.1:9/api is unreachable (ConnectError). "
    "Start the server (make up, or prefect server start) and check PREFECT_API_URL."
)


async def test_ready_needs_the_read_key_and_health_does_not(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    await configure(API_KEYS="alpha", API_KEYS_FOR_READS="true")
    refused = await client.get("/ready")
    assert (refused.status_code, refused.json()["message"]) == (
        401,
        "this endpoint needs an API key: send it as 'X-API-Key: <key>' or "
        "'Authorization: Bearer <key>' (keys are configured in API_KEYS)",
    )
    assert (await client.get("/ready", headers={"X-API-Key": "beta"})).status_code == 401
    assert (await client.get("/ready", headers={"X-API-Key": "alpha"})).status_code == 503
    cookie = {"Cookie": "pipeline_api_key=alpha"}  # the dashboard's reader
    assert (await client.get("/ready", headers=cookie)).status_code == 503
    health = await client.get("/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})

    await configure(API_KEYS="alpha", API_KEYS_FOR_READS="false")
    assert (await client.get("/ready")).status_code == 503  # reads open: readiness too


async def test_ready_shows_no_credentials_nor_query_strings(
    client: httpx.AsyncClient, configure: Configure
) -> None:
    """`?password=…` was shown (only what came before the last '@' was cut), and PREFECT_API_URL
    whole, its user-info included."""
    await configure(
        DATABASE_URL="postgresql+asyncpg://app:Pw1@127.0.0.1:1/pipelines?password=S3cretPw",
        PREFECT_API_URL="http://prefect:Pw2@127.0.0.1:9/api?token=T0ken",
    )
    response = await client.get("/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert [check["name"] for check in checks] == ["database", "data_dir", "prefect_api"]
    database, _, prefect = checks
    assert database["detail"] == (
        "127.0.0.1:1/pipelines: ConnectionRefusedError: [Errno 111] Connect call failed "
        "('127.0.0.1', 1)"
    )
    assert prefect["detail"] == UNREACHABLE
    assert prefect["fix"] == (
        "start the Prefect server and set PREFECT_API_URL (now http://127.0.0.1:9/api) to its "
        "address in every process: API, worker and this one"
    )
    for secret in ("Pw1", "S3cretPw", "Pw2", "T0ken", "prefect:", "app@"):
        assert secret not in response.text, secret
