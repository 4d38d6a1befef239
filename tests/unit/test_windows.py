"""Sliding windows: counts, error rates and bucket-accurate percentiles over the recent span, in bounded memory."""

from __future__ import annotations

import gc
import math
import random
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.rollout.histogram import BUCKETS, RELATIVE_ERROR, LatencyHistogram, bucket_of, midpoint
from router.rollout.windows import SlidingWindow


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def footprint(window: SlidingWindow) -> int:
    """Bytes the window holds: its slices, their histograms and the counts in them."""
    histograms = [h for piece in window._slices for h in (piece.latency, piece.ttft)]
    return (sys.getsizeof(window._slices) + sum(sys.getsizeof(piece) for piece in window._slices)
            + sum(sys.getsizeof(h) + sys.getsizeof(h.counts) + sum(map(sys.getsizeof, h.counts.values()))
                  for h in histograms))


def test_window_summary_counts_errors_and_percentiles() -> None:
    window = SlidingWindow(span_s=10)
    window.add(ok=True, latency_s=9.0, ttft_s=None, at=80)  # older than the span: not read
    for i in range(100):
        window.add(ok=i % 10 != 0, latency_s=(i + 1) / 100, ttft_s=(i + 1) / 1000, at=100 + i * 0.05)
    successes = [(i + 1) / 100 for i in range(100) if i % 10 != 0]  # latencies count only for these
    summary = window.summary(now=105)
    assert summary.requests == 100 and summary.errors == 10 and summary.error_rate == pytest.approx(0.1)
    assert summary.rps == pytest.approx(10.0) and summary.span_s == 10
    assert summary.latency_p50_s == pytest.approx(exact_percentile(successes, 50), rel=RELATIVE_ERROR)
    assert summary.latency_p95_s == pytest.approx(exact_percentile(successes, 95), rel=RELATIVE_ERROR)
    assert summary.ttft_p95_s == pytest.approx(exact_percentile(successes, 95) / 10, rel=RELATIVE_ERROR)
    assert summary.latency_p99_s is not None and 0.98 <= summary.latency_p99_s <= 1.0  # never beyond the largest seen
    assert window.summary(now=105, span_s=1).requests == 20


def test_an_empty_window_has_no_percentiles() -> None:
    summary = SlidingWindow(span_s=10).summary(now=50)
    assert (summary.requests, summary.error_rate, summary.latency_p50_s, summary.ttft_p95_s) == (0, 0.0, None, None)


def test_a_short_span_reads_only_its_own_samples() -> None:
    window = SlidingWindow(span_s=60)
    for i in range(50):  # 1 s of slow failures, then 1 s of fast successes
        window.add(ok=False, latency_s=2.0, ttft_s=None, at=200 + i * 0.02)
    for i in range(50):
        window.add(ok=True, latency_s=0.01, ttft_s=0.005, at=201 + i * 0.02)
    recent = window.summary(now=202, span_s=1)
    assert recent.requests == 50 and recent.errors == 0 and recent.rps == pytest.approx(50)
    assert window.summary(now=202, span_s=0.5).requests == 25
    everything = window.summary(now=202)
    assert everything.requests == 100 and everything.error_rate == pytest.approx(0.5)


def test_old_slices_expire_and_their_slots_are_reused() -> None:
    window = SlidingWindow(span_s=5, slice_s=0.5)
    for i in range(40):
        window.add(ok=False, latency_s=1.0, ttft_s=None, at=10 + i * 0.1)  # 10.0 … 13.9
    assert window.summary(now=14).errors == 40
    assert window.summary(now=17).errors == 20  # only 12.0 … 13.9 is still within 5 s
    assert window.summary(now=30).requests == 0
    window.add(ok=True, latency_s=0.2, ttft_s=None, at=30)  # lands in a slot that held old failures
    summary = window.summary(now=30.1)
    assert (summary.requests, summary.errors, summary.latency_p50_s) == (1, 0, 0.2)
    window.add(ok=False, latency_s=0.2, ttft_s=None, at=12)  # older than what the slot now holds: dropped
    assert window.summary(now=30.1).errors == 0


def test_percentiles_are_within_the_stated_bound() -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(-3, 1.5) for _ in range(20_000)]
    window = SlidingWindow(span_s=60)
    for i, latency in enumerate(latencies):
        window.add(ok=True, latency_s=latency, ttft_s=latency / 3, at=1000 + i * 0.002)
    summary = window.summary(now=1040)
    for q, got in ((50, summary.latency_p50_s), (95, summary.latency_p95_s), (99, summary.latency_p99_s)):
        assert got == pytest.approx(exact_percentile(latencies, q), rel=RELATIVE_ERROR)
    assert summary.ttft_p95_s == pytest.approx(exact_percentile([x / 3 for x in latencies], 95), rel=RELATIVE_ERROR)


@given(st.lists(st.floats(1e-5, 1e4), min_size=1, max_size=300), st.floats(0, 100))
def test_histogram_percentile_is_bucket_accurate(values: list[float], q: float) -> None:
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    got = histogram.percentile(q)
    assert got is not None and min(values) <= got <= max(values)
    assert got == pytest.approx(exact_percentile(values, q), rel=RELATIVE_ERROR * 1.0001)


def test_buckets_cover_every_latency() -> None:
    assert bucket_of(0.0) == 0 and bucket_of(1e-7) == 0 and bucket_of(1e9) == BUCKETS - 1
    for value in (2e-5, 1e-4, 0.00123, 0.5, 1.0, 37.0, 9999.0):
        assert midpoint(bucket_of(value)) == pytest.approx(value, rel=RELATIVE_ERROR)


def test_memory_stays_bounded_whatever_the_request_count() -> None:
    rng = random.Random(1)
    latencies = [rng.lognormvariate(-4, 2) for _ in range(997)]
    window = SlidingWindow(span_s=10)

    def load(seconds: float, start: float) -> None:  # 1,000 requests a second
        for i in range(int(seconds * 1000)):
            window.add(ok=i % 101 != 0, latency_s=latencies[i % 997], ttft_s=latencies[i % 991], at=start + i / 1000)

    load(20, 0)  # two spans: every slot of the ring has been filled once
    gc.collect()
    tracked, before = len(gc.get_objects()), footprint(window)
    load(200, 20)  # ten times as many requests
    gc.collect()
    assert footprint(window) - before < 32 * 1024, (before, footprint(window))
    assert len(gc.get_objects()) - tracked < 50  # nothing per request for the garbage collector to walk
    assert window.summary(now=220).requests == pytest.approx(10_000, rel=0.01)
    stored = sum(len(s.latency.counts) + len(s.ttft.counts) for s in window._slices)
    assert stored <= len(window._slices) * 2 * BUCKETS  # the bound whatever the traffic
