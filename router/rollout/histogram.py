"""Latency histograms on fixed log-spaced buckets: bounded memory, percentiles within 2 %.

Keeping every request's latency costs memory and garbage-collector time in proportion to traffic;
counts in fixed buckets cost neither. Every histogram shares one bucket scheme, so two colours'
histograms can be merged, and ranked against each other (ties within a bucket) by the judge's
Mann–Whitney test.
"""

from __future__ import annotations

import math

RELATIVE_ERROR = 0.02  # a bucket's midpoint is within 2 % of any value in the bucket
GROWTH = (1 + RELATIVE_ERROR) ** 2  # a bucket's upper bound over its lower bound
LOWEST_S = 1e-5  # 10 µs: values at or below it share bucket 0 (absolute error ≤ 10 µs)
HIGHEST_S = 1e4  # values above it share the last bucket
BUCKETS = math.ceil(math.log(HIGHEST_S / LOWEST_S) / math.log(GROWTH)) + 2

_log = math.log
_LOG_LOWEST = math.log(LOWEST_S)
_PER_LOG = 1 / math.log(GROWTH)


def bucket_of(value_s: float) -> int:
    """Bucket 0 holds (0, LOWEST_S]; bucket i ≥ 1 holds (LOWEST_S·GROWTH^(i-1), LOWEST_S·GROWTH^i]."""
    if value_s <= LOWEST_S:
        return 0
    return min(BUCKETS - 1, int((math.log(value_s) - _LOG_LOWEST) * _PER_LOG) + 1)


def midpoint(bucket: int) -> float:
    """The value a bucket stands for: its geometric midpoint, within RELATIVE_ERROR of all it holds."""
    return LOWEST_S if bucket == 0 else LOWEST_S * GROWTH ** (bucket - 0.5)


class LatencyHistogram:
    """Counts per bucket (a sparse dict of ints, which the garbage collector never traverses),
    plus the smallest and largest value seen, so a percentile never falls outside what was seen."""

    __slots__ = ("counts", "count", "low", "high")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.low = math.inf
        self.high = 0.0

    def add(self, value_s: float) -> None:
        """O(1); on the proxy's hot path, so `bucket_of` is written out here."""
        if value_s > LOWEST_S:
            bucket = int((_log(value_s) - _LOG_LOWEST) * _PER_LOG) + 1
            if bucket >= BUCKETS:
                bucket = BUCKETS - 1
        else:
            bucket = 0
        if value_s > self.high:
            self.high = value_s
        if value_s < self.low:
            self.low = value_s
        counts = self.counts
        counts[bucket] = counts.get(bucket, 0) + 1
        self.count += 1

    def merge(self, other: LatencyHistogram) -> None:
        counts = self.counts
        for bucket, n in other.counts.items():
            counts[bucket] = counts.get(bucket, 0) + n
        self.count += other.count
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def clear(self) -> None:
        self.counts.clear()
        self.count = 0
        self.low = math.inf
        self.high = 0.0

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (q in 0–100), within RELATIVE_ERROR of the exact one; None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return min(max(midpoint(bucket), self.low), self.high)
        return self.high  # unreachable: the counts add up to self.count

    def value_counts(self) -> list[tuple[float, int]]:
        """(bucket midpoint, count) in increasing order: the histogram as tied values for rank tests."""
        return [(midpoint(bucket), self.counts[bucket]) for bucket in sorted(self.counts)]

    def __len__(self) -> int:
        return self.count
