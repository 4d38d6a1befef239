"""A light HTTP/1.1 keep-alive load generator on raw asyncio streams.

A general-purpose client (httpx) costs more CPU per request than the proxy under test, which
on a 2-core machine would hide the proxy's cost; this one only writes a request and reads the
answer (content-length or chunked) to the end.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class Measurement:
    """One measured run, as the benchmarks report it."""

    p50_s: float
    p99_s: float
    rps: float
    errors: int
    requests: int = 0

    @classmethod
    def of(cls, result: Result) -> Measurement:
        return cls(result.quantile(0.5), result.quantile(0.99), result.rps, result.errors, len(result.latencies_s))


def median_of(rounds: list[Measurement]) -> Measurement:
    """Medians of the figures over rounds; errors and requests summed."""
    return Measurement(statistics.median(m.p50_s for m in rounds), statistics.median(m.p99_s for m in rounds),
                       statistics.median(m.rps for m in rounds), sum(m.errors for m in rounds),
                       sum(m.requests for m in rounds))


def build_request(port: int, path: str, body: bytes, session: str) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Session-ID: {session}\r\n\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server closes the connection after this answer)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    closing = b"connection: close" in lower
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status, closing
    start = lower.index(b"content-length:") + 15
    length = int(lower[start:lower.index(b"\r\n", start)])
    await reader.readexactly(length)
    return status, closing


async def _worker(port: int, request: bytes, result: Result, stop_at: float, max_requests: int | None) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and (max_requests is None or len(result.latencies_s) < max_requests):
            started = time.perf_counter()
            writer.write(request)
            status, closing = await _read_response(reader)
            if closing:  # e.g. nginx after keepalive_requests answers on one connection
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if status >= 400:
                result.errors += 1
            result.latencies_s.append(time.perf_counter() - started)
    finally:
        writer.close()


async def run_load(port: int, path: str, body: bytes, concurrency: int, duration_s: float,
                   max_requests: int | None = None) -> Result:
    """`concurrency` connections, each sending requests back to back until time or count runs out."""
    result = Result()
    started = time.perf_counter()
    stop_at = started + duration_s
    workers = [_worker(port, build_request(port, path, body, f"bench-{i}"), result, stop_at, max_requests)
               for i in range(concurrency)]
    await asyncio.gather(*workers)
    result.elapsed_s = time.perf_counter() - started
    return result
