"""Whether the Datadog agent answers, asked before ddtrace is started and again at the process's
exit (standard library only).

An agent that accepts connections and never answers costs ddtrace ~3 s when it starts and ~21 s
at the process's exit (its flush is retried); app/observability/ asks first, and at exit
(at_exit.py) does not let ddtrace wait for an agent that does not answer.
"""

import http.client
import os
from typing import Literal
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
    return _ask(url, timeout) == "hung"


def answers(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """True when the agent at `url` answers GET /info within `timeout` (a Unix socket, not
    asked, counts as answering): what is left to send can reach it."""
    return _ask(url, timeout) in ("answered", "not asked")


def _ask(url: str, timeout: float) -> Literal["answered", "hung", "down", "not asked"]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not asked"  # a Unix socket
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path.rstrip('/')}/info")
        connection.getresponse().read()
    except TimeoutError:
        return "hung"
    except (OSError, http.client.HTTPException):
        return "down"
    finally:
        connection.close()
    return "answered"
