"""A bounded HTTP/1.1 load generator: N keep-alive connections, a fixed request count, a time cap.

Plain asyncio streams rather than an HTTP client library, so the generator costs far less CPU
than the server it measures (both share this machine's two cores). Only ever 127.0.0.1.
"""

import asyncio
import math
import statistics
import time
from dataclasses import dataclass


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(statistics.median(self.latencies_ms), 2),
            "p99_ms": round(self.percentile(99), 2),
        }


async def _connection(
    port: int, path: str, budget: list[int], deadline: float, latencies: list[float]
) -> int:
    """One keep-alive connection sending requests one after another; returns its error count."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    errors = 0
    try:
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
    finally:
        writer.close()
    return errors


async def run_load(
    port: int, path: str, *, connections: int, requests: int, max_seconds: float
) -> LoadResult:
    """Send `requests` GETs of `path` over `connections` connections, stopping at `max_seconds`."""
    budget = [requests]
    latencies: list[float] = []
    started = time.monotonic()
    deadline = started + max_seconds
    errors = await asyncio.gather(
        *(_connection(port, path, budget, deadline, latencies) for _ in range(connections))
    )
    return LoadResult(len(latencies), sum(errors), time.monotonic() - started, latencies)
