"""The API's request spans have a bounded set of resources: one per route and method."""

import json
import time
from typing import Any

from tests.observability import conftest
from tests.support.datadog import run_python

SERVICE = "pipeline-resources-test"

# The app in a fresh interpreter, called as uvicorn calls it (through httpx, the request would be
# a child of the client's span, and that trace is dropped as a detached client call).
REQUESTS = """
import asyncio, json, sys
from app import observability
from app.main import create_app

app = create_app()

async def call(method, path, host="test"):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await app({
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", host.encode())], "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }, receive, send)
    return sent[0]["status"]

async def main():
    return [await call(*request) for request in json.loads(sys.argv[1])]

print(json.dumps(asyncio.run(main())))
observability.tracer().flush()
"""
SENT = [
    ("GET", "/no/such/path/123"),
    ("GET", "/no/such/path/456"),
    ("HEAD", "/no/such/path/789"),
    ("GET", "/health"),
    ("HEAD", "/health"),
    ("GET", "/static/no-such-file.css"),
    ("GET", "/api/pipelines", "evil.example"),  # refused by the host check, before any route
]


def _request_spans(agent: conftest.TestAgent) -> list[dict[str, Any]]:
    return [
        span
        for span in agent.spans()
        if span["service"] == SERVICE and span["name"] == "fastapi.request"
    ]


def test_unknown_paths_share_one_resource_and_head_is_not_get(
    test_agent: conftest.TestAgent,
) -> None:
    """Each unknown path was a resource of its own (`GET /no/such/path/123`: unbounded
    cardinality), and a HEAD answered as its GET showed under `GET /health`."""
    result = run_python(
        REQUESTS,
        json.dumps(SENT),
        DD_AGENT_HOST="127.0.0.1",
        DD_TRACE_AGENT_PORT=test_agent.url.rsplit(":", 1)[1],
        DD_SERVICE=SERVICE,
    )
    assert json.loads(result.stdout) == [404, 404, 404, 200, 200, 404, 403]
    deadline = time.monotonic() + 15
    while len(_request_spans(test_agent)) < len(SENT) and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = sorted(_request_spans(test_agent), key=lambda span: span["start"])
    assert [
        (
            span["meta"]["http.method"],
            span["resource"],
            span["meta"].get("http.route"),
            span["meta"]["http.status_code"],
        )
        for span in spans
    ] == [
        ("GET", "GET 404", None, "404"),
        ("GET", "GET 404", None, "404"),
        ("HEAD", "HEAD 404", None, "404"),
        ("GET", "GET /health", "/health", "200"),
        ("HEAD", "HEAD /health", "/health", "200"),
        # a route's own 404 (here the static files' mount) keeps its route
        ("GET", "GET /static", "/static", "404"),
        ("GET", "GET 403", None, "403"),  # not filed with the 404s
    ]
