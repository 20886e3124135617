"""The container HEALTHCHECK of the one image: exit 0 when a health URL answers 200, else 1.

`python -m app.healthcheck [URL]` — URL, else HEALTHCHECK_URL, else the API's /health. Each service
of docker-compose.yml points it at its own endpoint (API, Prefect server, worker webserver).
Standard library only, so a check costs an interpreter start and nothing of the app.
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/health"


def healthy(url: str, *, timeout: float = 3.0) -> bool:
    """True when `url` answers 200 within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("HEALTHCHECK_URL", DEFAULT_URL)
    if healthy(url):
        return 0
    print(f"unhealthy: {url} did not answer 200", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
