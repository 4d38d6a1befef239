"""Per-colour sliding windows of recent requests: what the judge reads to compare green with blue.

A window is a ring of short time slices, each holding counters and latency histograms, so that
recording a request is O(1) and allocates nothing the garbage collector has to walk, and memory
stays bounded whatever the traffic. Reading sums the slices of the span asked for; percentiles are
bucket-accurate (within `histogram.RELATIVE_ERROR`, 2 %).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from router.rollout.histogram import LatencyHistogram

_monotonic = time.monotonic
SLICE_S = 0.1  # time resolution of a window: the finest span a reading can tell apart
MAX_SLICES = 1200  # a longer window gets coarser slices, so memory stays bounded
NEVER = -(1 << 62)  # the index of a slice that has held nothing yet


@dataclass(frozen=True)
class WindowSummary:
    span_s: float
    requests: int
    errors: int
    error_rate: float
    rps: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    ttft_p95_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WindowReading:
    """One span of a window: its summary, and the latencies of its successful requests (for rank tests)."""

    summary: WindowSummary
    latencies: LatencyHistogram


class _Slice:
    """What happened in one slice of time: `index` is the slice's start in units of the slice length."""

    __slots__ = ("index", "requests", "errors", "latency", "ttft")

    def __init__(self) -> None:
        self.index = NEVER
        self.requests = 0
        self.errors = 0
        self.latency = LatencyHistogram()
        self.ttft = LatencyHistogram()

    def reset(self, index: int) -> None:
        self.index = index
        self.requests = self.errors = 0
        self.latency.clear()
        self.ttft.clear()


class SlidingWindow:
    """The last `span_s` seconds of requests, in slices of `slice_s` (a ring reused as time moves on)."""

    def __init__(self, span_s: float, slice_s: float = SLICE_S) -> None:
        self.span_s = span_s
        self.slice_s = max(slice_s, span_s / (MAX_SLICES - 1))
        self._per_s = 1 / self.slice_s  # times are multiplied, never divided, so adding and reading agree on edges
        self._slices = [_Slice() for _ in range(math.ceil(span_s / self.slice_s) + 1)]
        self._count = len(self._slices)

    def add(self, ok: bool, latency_s: float, ttft_s: float | None, at: float | None = None) -> None:
        """Record one request (latencies count only for successful ones): O(1), and nothing the
        garbage collector tracks is allocated."""
        index = int((_monotonic() if at is None else at) * self._per_s)  # times are positive: int() floors
        current = self._slices[index % self._count]
        if current.index != index:
            if current.index > index:  # older than anything the window still keeps
                return
            current.reset(index)
        current.requests += 1
        if not ok:
            current.errors += 1
            return
        current.latency.add(latency_s)
        if ttft_s is not None:
            current.ttft.add(ttft_s)

    def read(self, now: float | None = None, span_s: float | None = None) -> WindowReading:
        """The slices that start within the last `span_s`, and the one being filled: between
        `span_s - slice_s` and `span_s` of history (a span shorter than a slice reads the current
        slice), so a short span reads its own requests, not the whole window's."""
        now = time.monotonic() if now is None else now
        span = min(self.span_s, span_s if span_s is not None else self.span_s)
        newest = int(now * self._per_s)
        oldest = max(min(math.ceil((now - span) * self._per_s), newest), newest - self._count + 1)
        requests = errors = 0
        latency, ttft = LatencyHistogram(), LatencyHistogram()
        for index in range(oldest, newest + 1):
            piece = self._slices[index % self._count]
            if piece.index != index:  # nothing was recorded in that slice of time
                continue
            requests += piece.requests
            errors += piece.errors
            latency.merge(piece.latency)
            ttft.merge(piece.ttft)
        asked = span_s if span_s is not None else self.span_s
        summary = WindowSummary(
            span_s=asked, requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
            rps=requests / asked if asked > 0 else 0.0,
            latency_p50_s=latency.percentile(50), latency_p95_s=latency.percentile(95),
            latency_p99_s=latency.percentile(99), ttft_p95_s=ttft.percentile(95),
        )
        return WindowReading(summary, latency)

    def summary(self, now: float | None = None, span_s: float | None = None) -> WindowSummary:
        return self.read(now, span_s).summary
