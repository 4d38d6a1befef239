"""The judge: is green healthy enough to take the next step? A pure function of the window figures.

Each check compares green with an absolute limit and, when blue has enough traffic to compare
with, with blue (a ratio). Too few green requests is *inconclusive*: no data, no verdict. Every
verdict carries its reasons in words with the numbers, so an operator can see why it was given.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from router.rollout.histogram import LatencyHistogram
from router.rollout.windows import WindowSummary

# Latencies as the judge gets them: a window's histogram (ties within a bucket), or the values themselves.
Latencies = LatencyHistogram | tuple[float, ...]


class JudgeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_requests: int = Field(20, ge=1, description="green requests in a step below which the verdict is inconclusive")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="green's error rate limit (absolute)")
    max_error_ratio: float = Field(2.0, gt=0, description="green error rate ≤ ratio × max(blue's, error_floor)")
    error_floor: float = Field(0.01, ge=0, le=1, description="blue's error rate is taken as at least this in the ratio")
    max_latency_p95_s: float = Field(60.0, gt=0)
    max_latency_ratio: float = Field(2.0, gt=0, description="green p95 latency ≤ ratio × blue's")
    max_ttft_p95_s: float = Field(10.0, gt=0, description="time to first token (first chunk)")
    max_ttft_ratio: float = Field(2.0, gt=0)
    hard_error_rate: float = Field(0.5, gt=0, le=1, description="at or above this, roll back at once")
    hard_min_requests: int = Field(5, ge=1, description="green requests needed before the hard limit applies")
    hard_window_s: float = Field(1.0, gt=0, description="the hard limit is checked every tick over this recent span")
    mann_whitney: bool = Field(False, description="also fail when green's latencies are significantly higher (Kayenta)")
    mann_whitney_alpha: float = Field(0.01, gt=0, lt=1)
    mann_whitney_min_effect: float = Field(1.2, ge=1, description="…and green's median is at least this × blue's")


class Outcome(StrEnum):
    passed = "passed"
    failed = "failed"
    inconclusive = "inconclusive"


@dataclass(frozen=True)
class Evidence:
    """What the judge sees for one step: both colours' figures over the same span."""

    green: WindowSummary
    blue: WindowSummary
    green_latencies: Latencies = ()
    blue_latencies: Latencies = ()
    names: tuple[str, str] = ("green", "blue")  # canary, then the colour it is compared with


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...] = field(default_factory=tuple)
    hard: bool = False  # a breach that warrants rolling back without waiting out the step

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "reasons": list(self.reasons), "hard": self.hard}


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def hard_breach(green: WindowSummary, options: JudgeOptions, name: str = "green") -> str | None:
    """The fast path: a reason to roll back now, or None."""
    if green.requests >= options.hard_min_requests and green.error_rate >= options.hard_error_rate:
        return (f"{name} error rate {_pct(green.error_rate)} ≥ hard limit {_pct(options.hard_error_rate)} "
                f"over {green.requests} requests")
    return None


def value_counts(latencies: Latencies) -> list[tuple[float, int]]:
    """(value, how many times it occurs) in increasing order: histograms and raw values alike."""
    if isinstance(latencies, LatencyHistogram):
        return latencies.value_counts()
    return sorted(Counter(latencies).items())


def mann_whitney_p(greater: Latencies, other: Latencies) -> float:
    """One-sided p-value that `greater` tends to exceed `other` (U test, normal approximation with
    tie correction), as Kayenta uses to tell a slower canary from noise. Equal values share their
    average rank; on histograms, so do values in the same bucket."""
    first, second = value_counts(greater), value_counts(other)
    n1, n2 = sum(n for _, n in first), sum(n for _, n in second)
    if n1 == 0 or n2 == 0:
        return 1.0
    mine = dict(first)
    theirs = dict(second)
    rank_sum = 0.0
    ties = 0.0
    below = 0  # values ranked before the current one
    for value in sorted(mine.keys() | theirs.keys()):
        a, t = mine.get(value, 0), mine.get(value, 0) + theirs.get(value, 0)
        rank_sum += a * (below + (t + 1) / 2)  # the t tied values take ranks below+1 … below+t
        ties += t**3 - t
        below += t
    u = rank_sum - n1 * (n1 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def _median(latencies: Latencies) -> float:
    counts = value_counts(latencies)
    total = sum(n for _, n in counts)
    mid = total // 2

    def at(position: int) -> float:
        seen = 0
        for value, n in counts:
            seen += n
            if seen > position:
                return value
        return counts[-1][0]

    return at(mid) if total % 2 else (at(mid - 1) + at(mid)) / 2


def judge(evidence: Evidence, options: JudgeOptions) -> Verdict:
    green, blue = evidence.green, evidence.blue
    name, other = evidence.names
    hard = hard_breach(green, options, name)
    if hard:
        return Verdict(Outcome.failed, (hard,), hard=True)
    if green.requests < options.min_requests:
        return Verdict(Outcome.inconclusive,
                       (f"only {green.requests} {name} requests, fewer than the {options.min_requests} needed to judge",))
    failures: list[str] = []
    passes: list[str] = []
    compare = blue.requests >= options.min_requests

    def check(ok: bool, fail: str, good: str) -> None:
        (passes if ok else failures).append(good if ok else fail)

    over = f"over {green.requests} requests"
    check(green.error_rate <= options.max_error_rate,
          f"{name} error rate {_pct(green.error_rate)} > {_pct(options.max_error_rate)} {over}",
          f"{name} error rate {_pct(green.error_rate)} ≤ {_pct(options.max_error_rate)} {over}")
    if compare:
        allowed = max(blue.error_rate, options.error_floor) * options.max_error_ratio
        check(green.error_rate <= allowed,
              f"{name} error rate {_pct(green.error_rate)} > {options.max_error_ratio:g} × {other}'s {_pct(blue.error_rate)}",
              f"{name} error rate within {options.max_error_ratio:g} × {other}'s {_pct(blue.error_rate)}")
    for metric, g, b, limit, ratio in (
        ("p95 latency", green.latency_p95_s, blue.latency_p95_s, options.max_latency_p95_s, options.max_latency_ratio),
        ("p95 time to first token", green.ttft_p95_s, blue.ttft_p95_s, options.max_ttft_p95_s, options.max_ttft_ratio),
    ):
        if g is None:
            continue
        check(g <= limit, f"{name} {metric} {_ms(g)} > {_ms(limit)}", f"{name} {metric} {_ms(g)} ≤ {_ms(limit)}")
        if compare and b:
            check(g <= b * ratio, f"{name} {metric} {_ms(g)} > {ratio:g} × {other}'s {_ms(b)}",
                  f"{name} {metric} {_ms(g)} within {ratio:g} × {other}'s {_ms(b)}")
    if options.mann_whitney and compare and evidence.green_latencies and evidence.blue_latencies:
        p = mann_whitney_p(evidence.green_latencies, evidence.blue_latencies)
        effect = _median(evidence.green_latencies) / max(_median(evidence.blue_latencies), 1e-9)
        slower = p < options.mann_whitney_alpha and effect >= options.mann_whitney_min_effect
        check(not slower, f"{name} latencies significantly higher than {other}'s (Mann-Whitney p={p:.4f}, median ×{effect:.2f})",
              f"{name} latencies not significantly higher than {other}'s (Mann-Whitney p={p:.4f}, median ×{effect:.2f})")
    if not compare:
        passes.append(f"{other} has {blue.requests} requests: too few to compare with, absolute limits only")
    if failures:
        return Verdict(Outcome.failed, tuple(failures))
    return Verdict(Outcome.passed, tuple(passes))
