"""Whether the Datadog agent answers, asked before ddtrace is started (standard library only).

An agent that accepts connections and never answers costs ddtrace ~3 s when it starts and ~21 s
at the process's exit (its flush is retried); app/observability/ asks first, once per process.
"""

import http.client
import os
from urllib.parse import urlsplit

from app.config import Settings

PROBE_SECONDS = 1.0
"""How long the agent has to answer GET /info (it answers in milliseconds)."""


def trace_agent_url(settings: Settings) -> str:
    """Where ddtrace sends traces: DD_TRACE_AGENT_URL, else the agent's host and trace port."""
    if url := os.environ.get("DD_TRACE_AGENT_URL"):
        return url.rstrip("/")
    host = settings.dd_agent_host or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"http://{host}:{settings.dd_trace_agent_port}"


def hangs(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """True when the agent at `url` takes the connection (or leaves it pending) and does not
    answer GET /info within `timeout`. An agent that refuses the connection is down, not hung:
    ddtrace's own retries deal with it, and it may come up later."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # a Unix socket: not probed
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path.rstrip('/')}/info")
        connection.getresponse().read()
    except TimeoutError:
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return False
