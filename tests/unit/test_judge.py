"""The judge: a pure verdict on green's window against blue's and the absolute limits."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.rollout.histogram import LatencyHistogram, bucket_of, midpoint
from router.rollout.judge import Evidence, JudgeOptions, Outcome, judge, mann_whitney_p
from router.rollout.windows import WindowSummary

OPTIONS = JudgeOptions()


def window(requests: int = 100, errors: int = 0, p95: float | None = 1.0, ttft: float | None = 0.2) -> WindowSummary:
    return WindowSummary(span_s=30, requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
                         rps=requests / 30, latency_p50_s=p95, latency_p95_s=p95, latency_p99_s=p95, ttft_p95_s=ttft)


HEALTHY_BLUE = window()


@pytest.mark.parametrize(("green", "outcome", "reason"), [
    (window(), Outcome.passed, "green error rate 0.0 % ≤ 5.0 % over 100 requests"),
    (window(requests=143, errors=17), Outcome.failed, "green error rate 11.9 % > 5.0 % over 143 requests"),
    (window(requests=19), Outcome.inconclusive, "only 19 green requests, fewer than the 20 needed to judge"),
    (window(requests=0), Outcome.inconclusive, "only 0 green requests"),
    (window(p95=2.5), Outcome.failed, "green p95 latency 2500 ms > 2 × blue's 1000 ms"),
    (window(p95=61.0), Outcome.failed, "green p95 latency 61.0 s > 60.0 s"),
    (window(ttft=0.5), Outcome.failed, "green p95 time to first token 500 ms > 2 × blue's 200 ms"),
    (window(ttft=11.0), Outcome.failed, "green p95 time to first token 11.0 s > 10.0 s"),
    (window(requests=100, errors=3), Outcome.failed, "green error rate 3.0 % > 2 × blue's 0.0 %"),
    (window(requests=10, errors=6), Outcome.failed, "green error rate 60.0 % ≥ hard limit 50.0 % over 10 requests"),
])
def test_judge_table(green: WindowSummary, outcome: Outcome, reason: str) -> None:
    verdict = judge(Evidence(green, HEALTHY_BLUE), OPTIONS)
    assert verdict.outcome is outcome
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_without_enough_blue_traffic_only_absolute_limits_apply() -> None:
    verdict = judge(Evidence(window(p95=5.0), window(requests=3)), OPTIONS)
    assert verdict.outcome is Outcome.passed
    assert any("too few to compare" in r for r in verdict.reasons)


def test_hard_breach_is_flagged() -> None:
    verdict = judge(Evidence(window(requests=5, errors=3), HEALTHY_BLUE), OPTIONS)
    assert verdict.outcome is Outcome.failed and verdict.hard


def test_mann_whitney_tells_a_slower_canary_from_noise() -> None:
    fast = tuple(1.0 + (i % 7) * 0.01 for i in range(60))
    slow = tuple(1.5 + (i % 7) * 0.01 for i in range(60))
    assert mann_whitney_p(slow, fast) < 1e-6
    assert mann_whitney_p(fast, slow) > 0.99
    assert 0.3 < mann_whitney_p(fast, fast) < 0.7
    options = JudgeOptions(mann_whitney=True, max_latency_ratio=10)
    verdict = judge(Evidence(window(p95=1.5), window(p95=1.06), slow, fast), options)
    assert verdict.outcome is Outcome.failed and "Mann-Whitney" in verdict.reasons[-1]


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_more_errors_never_improve_the_verdict(requests: int, errors: int, more: int) -> None:
    errors, more = min(errors, requests), min(errors + more, requests)
    rank = {Outcome.passed: 0, Outcome.inconclusive: 1, Outcome.failed: 2}
    fewer = judge(Evidence(window(requests, errors), HEALTHY_BLUE), OPTIONS)
    worse = judge(Evidence(window(requests, more), HEALTHY_BLUE), OPTIONS)
    if fewer.outcome is not Outcome.inconclusive:
        assert rank[worse.outcome] >= rank[fewer.outcome]


def histogram_of(values: tuple[float, ...]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    return histogram


@given(st.lists(st.floats(1e-4, 100), min_size=1, max_size=80), st.lists(st.floats(1e-4, 100), min_size=1, max_size=80))
def test_mann_whitney_on_histograms_ranks_values_tied_within_a_bucket(green: list[float], blue: list[float]) -> None:
    def rounded(values: list[float]) -> tuple[float, ...]:
        return tuple(midpoint(bucket_of(v)) for v in values)

    on_histograms = mann_whitney_p(histogram_of(tuple(green)), histogram_of(tuple(blue)))
    assert on_histograms == pytest.approx(mann_whitney_p(rounded(green), rounded(blue)), abs=1e-9)


def test_judge_reads_a_slower_canary_from_the_windows() -> None:
    from router.rollout.providers import BuiltinProvider
    from router.rollout.windows import SlidingWindow
    from router.weights import Colour

    windows = {colour: SlidingWindow(span_s=60) for colour in Colour}
    now = time.monotonic()
    for i in range(60):
        at = now - 5 + i * 0.05
        windows[Colour.blue].add(ok=True, latency_s=1.0 + (i % 7) * 0.01, ttft_s=0.1, at=at)
        windows[Colour.green].add(ok=True, latency_s=1.5 + (i % 7) * 0.01, ttft_s=0.1, at=at)
    evidence = asyncio.run(BuiltinProvider(windows).evidence(Colour.green, 10))
    assert evidence.green.requests == evidence.blue.requests == 60
    assert mann_whitney_p(evidence.green_latencies, evidence.blue_latencies) < 1e-6
    verdict = judge(evidence, JudgeOptions(mann_whitney=True, max_latency_ratio=10))
    assert verdict.outcome is Outcome.failed and "median ×1.4" in verdict.reasons[-1]
    calm = judge(asyncio.run(BuiltinProvider(windows).evidence(Colour.blue, 10)), JudgeOptions(mann_whitney=True))
    assert calm.outcome is Outcome.passed, calm.reasons
