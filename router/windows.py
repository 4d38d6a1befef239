"""Per-colour sliding windows of recent requests: what the judge reads to compare green with blue."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterable

MAX_SAMPLES = 100_000  # per colour; bounds memory under any load


@dataclass(frozen=True)
class Sample:
    at: float
    ok: bool
    latency_s: float
    ttft_s: float | None


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

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (q in 0–100); None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]


def summarise(samples: Iterable[Sample], span_s: float) -> WindowSummary:
    samples = list(samples)
    latencies = sorted(s.latency_s for s in samples if s.ok)
    ttfts = sorted(s.ttft_s for s in samples if s.ok and s.ttft_s is not None)
    errors = sum(1 for s in samples if not s.ok)
    count = len(samples)
    return WindowSummary(
        span_s=span_s, requests=count, errors=errors, error_rate=errors / count if count else 0.0,
        rps=count / span_s if span_s > 0 else 0.0,
        latency_p50_s=percentile(latencies, 50), latency_p95_s=percentile(latencies, 95),
        latency_p99_s=percentile(latencies, 99), ttft_p95_s=percentile(ttfts, 95),
    )


class SlidingWindow:
    """Samples of the last `span_s` seconds (and at most MAX_SAMPLES)."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._samples: deque[Sample] = deque(maxlen=MAX_SAMPLES)

    def add(self, ok: bool, latency_s: float, ttft_s: float | None, at: float | None = None) -> None:
        self._samples.append(Sample(time.monotonic() if at is None else at, ok, latency_s, ttft_s))

    def samples(self, now: float | None = None, span_s: float | None = None) -> list[Sample]:
        now = time.monotonic() if now is None else now
        while self._samples and self._samples[0].at < now - self.span_s:
            self._samples.popleft()
        since = now - (span_s if span_s is not None else self.span_s)
        recent: list[Sample] = []
        for sample in reversed(self._samples):  # newest first: a short span reads only its own samples
            if sample.at < since:
                break
            recent.append(sample)
        recent.reverse()
        return recent

    def summary(self, now: float | None = None, span_s: float | None = None) -> WindowSummary:
        span = span_s if span_s is not None else self.span_s
        return summarise(self.samples(now, span), span)
