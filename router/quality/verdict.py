"""Does green regress against blue? A pure function of the comparison's summary and the limits.

A rate (errors, empty, non-Russian, looping, cut-off, refused answers) counts against green only
when it is over its absolute limit *and* worse than blue's by more than the tolerance: a question
set that makes both models truncate is not green's regression. Every finding carries its numbers.

"green" and "blue" here are the sides of the comparison: the candidate and the colour it is weighed
against. In a rollout whose stable colour is green the candidate is blue; `Sides` names them so the
reasons say which colour did what.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from router.quality.checks import CheckRates
from router.quality.summary import Summary

ONE_SIDED_95 = 1.645
MIN_PAIRS_TO_PASS = 6  # fewer questions answered by both cannot pass (the median's 95 % interval needs 6)


class Outcome(StrEnum):
    passed = "passed"  # no regression
    regressed = "regressed"  # green is worse than the limits allow
    inconclusive = "inconclusive"  # nothing to compare with (blue answered nothing), or within sampling noise


@dataclass(frozen=True)
class CompareLimits:
    max_error_rate: float = 0.05
    max_empty_rate: float = 0.05
    max_non_russian_rate: float = 0.10
    max_repetition_rate: float = 0.10
    max_truncated_rate: float = 0.25
    max_refusal_rate: float = 0.10
    tolerance: float = 0.05  # how much green's rate may exceed blue's before a breach counts
    min_length_ratio: float = 0.5  # median green/blue answer length
    max_length_ratio: float = 4.0
    min_chrf: float = 0.0  # median chrF of green against blue (0–100); 0 turns the check off
    # Streams: green's inter-chunk gap p95 may reach this multiple of blue's, and any gap up to
    # min_gap_s passes (a reader does not notice a stall shorter than that, whatever the ratio).
    max_gap_ratio: float = 3.0
    min_gap_s: float = 0.5


@dataclass(frozen=True)
class Sides:
    """What the reasons call the candidate ("green") and the colour it is weighed against ("blue")."""

    candidate: str = "green"
    baseline: str = "blue"


COLOURS = Sides()


@dataclass(frozen=True)
class Finding:
    name: str
    green: float | None
    blue: float | None  # None where the check has no blue side (ratios of the pair)
    limit: float
    passed: bool
    reason: str
    uncertain: bool = False  # not failed, but only because of sampling noise: more answers will tell


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...]  # why green regressed, or why there is no verdict
    findings: tuple[Finding, ...] = ()

    @property
    def regressed(self) -> bool:
        return self.outcome is Outcome.regressed


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


# (finding, what a reader calls it, the CheckRates field, its limit)
_CHECKS: tuple[tuple[str, str, str, Callable[[CompareLimits], float]], ...] = (
    ("empty_rate", "empty answers", "empty", lambda lim: lim.max_empty_rate),
    ("non_russian_rate", "non-Russian answers", "wrong_language", lambda lim: lim.max_non_russian_rate),
    ("repetition_rate", "looping answers", "repetitive", lambda lim: lim.max_repetition_rate),
    ("truncated_rate", "cut-off answers", "truncated", lambda lim: lim.max_truncated_rate),
    ("refusal_rate", "refusals", "refusal", lambda lim: lim.max_refusal_rate),
)


def noise_margin(green: float, blue: float, green_n: int, blue_n: int) -> float:
    """How far green's share may exceed blue's by chance alone: the one-sided 95 % bound, 1.645 standard
    errors of the difference of two shares, each with its own variance (the question is whether green's
    exceeds blue's, not whether they are equal, so no pooling: a rare failure in 20 answers against
    none in 400 is noise, not a breach). Small samples (a shadow phase's first pairs) get a wide margin,
    hundreds of answers a narrow one; a side with no answers adds nothing."""
    if green_n <= 0:
        return 0.0
    variance = green * (1 - green) / green_n + (blue * (1 - blue) / blue_n if blue_n > 0 else 0.0)
    return ONE_SIDED_95 * math.sqrt(variance)


def rate_finding(name: str, label: str, green: float, blue: float, limit: float, tolerance: float,
                 green_n: int = 0, blue_n: int = 0, sides: Sides = COLOURS) -> Finding:
    """Over the limit and worse than blue by more than the tolerance plus sampling noise (with counts).
    Over the limit and worse than blue by more than the tolerance but within the noise is *uncertain*:
    not a breach yet, not a pass either; more answers decide."""
    margin = tolerance + noise_margin(green, blue, green_n, blue_n)
    over = green > limit
    breach = over and green > blue + margin
    uncertain = over and not breach and green > blue + tolerance
    reason = f"{label}: {sides.candidate} {_pct(green)} {'>' if over else '≤'} limit {_pct(limit)} " \
             f"({sides.baseline} {_pct(blue)})"
    if uncertain:
        reason += f", within {sides.baseline} + {_pct(margin)}, the noise of {green_n} answers: more needed"
    elif over and not breach:
        reason += f", within {sides.baseline} + {_pct(tolerance)}"
    return Finding(name, green, blue, limit, not breach, reason, uncertain)


def gap_finding(green_gap_s: float, blue_gap_s: float, limits: CompareLimits, sides: Sides = COLOURS) -> Finding:
    """Green's streams stall: its inter-chunk gap p95 is over the floor a reader notices *and* over the
    allowed multiple of blue's (total latency would confound model speed with answer length)."""
    allowed = max(limits.min_gap_s, limits.max_gap_ratio * blue_gap_s)
    ratio = green_gap_s / blue_gap_s if blue_gap_s > 0 else math.inf
    passed = green_gap_s <= allowed
    return Finding(
        "gap_ratio", green_gap_s, blue_gap_s, allowed, passed,
        f"inter-chunk gap p95: {sides.candidate} {green_gap_s * 1000:.0f} ms, {ratio:.1f}× {sides.baseline}'s "
        f"{blue_gap_s * 1000:.0f} ms ({'≤' if passed else '>'} {allowed * 1000:.0f} ms allowed: "
        f"{limits.max_gap_ratio:g}× {sides.baseline}, at least {limits.min_gap_s * 1000:.0f} ms)",
    )


def length_finding(ratio: float, interval: tuple[float, float] | None, limits: CompareLimits, pair: str) -> Finding:
    """The median length ratio out of bounds, beyond sampling noise: the whole 95 % interval of the median
    must lie outside the allowed range (a few short answers of a healthy model must not fail it). Without an
    interval (fewer than 6 pairs) a median out of bounds is uncertain: more pairs will tell."""
    allowed = f"allowed {limits.min_length_ratio:g}–{limits.max_length_ratio:g}"
    if interval is None:
        outside = not limits.min_length_ratio <= ratio <= limits.max_length_ratio
        return Finding("length_ratio", ratio, None, limits.min_length_ratio, True,
                       f"median answer length {pair}: {ratio:.2f} ({allowed}; too few pairs to judge"
                       f"{': more needed' if outside else ''})", uncertain=outside)
    low_end, high_end = interval
    low, high = high_end < limits.min_length_ratio, low_end > limits.max_length_ratio
    bound = limits.min_length_ratio if low or not high else limits.max_length_ratio
    return Finding("length_ratio", ratio, None, bound, not (low or high),
                   f"median answer length {pair}: {ratio:.2f} (95 % interval {low_end:.2f}–{high_end:.2f}, {allowed})")


def _pair_findings(summary: Summary, limits: CompareLimits, sides: Sides) -> list[Finding]:
    findings = []
    pair = f"{sides.candidate}/{sides.baseline}"
    ratio = summary.pair.length_ratio_p50
    if ratio is not None:
        findings.append(length_finding(ratio, summary.pair.length_ratio_interval, limits, pair))
    similarity = summary.pair.chrf_p50
    if limits.min_chrf > 0 and similarity is not None:
        findings.append(Finding(
            "chrf", similarity, None, limits.min_chrf, similarity >= limits.min_chrf,
            f"median chrF {sides.candidate} vs {sides.baseline}: {similarity:.1f} "
            f"({'≥' if similarity >= limits.min_chrf else '<'} {limits.min_chrf:g})",
        ))
    green_gap, blue_gap = summary.green.gap_p95_s, summary.blue.gap_p95_s
    if green_gap is not None and blue_gap is not None:
        findings.append(gap_finding(green_gap, blue_gap, limits, sides))
    return findings


def check_findings(green: CheckRates, blue: CheckRates, limits: CompareLimits, sides: Sides = COLOURS) -> list[Finding]:
    """Each answer check's share, green against blue over the answers each colour gave."""
    return [rate_finding(name, label, getattr(green, field), getattr(blue, field), limit_of(limits), limits.tolerance,
                         green.answers, blue.answers, sides) for name, label, field, limit_of in _CHECKS]


def judge_comparison(summary: Summary, limits: CompareLimits = CompareLimits(), sides: Sides = COLOURS) -> Verdict:
    """Passed, regressed (with every breached limit as a reason) or inconclusive."""
    if summary.blue.requests == 0 or summary.green.requests == 0:
        return Verdict(Outcome.inconclusive, ("no questions were asked",))
    if summary.blue.checks.answers == 0:
        return Verdict(Outcome.inconclusive, (
            f"{sides.baseline} answered none of its {summary.blue.requests} requests: nothing to compare "
            f"{sides.candidate} with",))
    green, blue = summary.green, summary.blue
    findings = [rate_finding("error_rate", "failed requests", green.error_rate, blue.error_rate, limits.max_error_rate,
                             limits.tolerance, green.requests, blue.requests, sides),
                *check_findings(green.checks, blue.checks, limits, sides)]
    findings += _pair_findings(summary, limits, sides)
    failed = tuple(f.reason for f in findings if not f.passed)
    if failed:
        return Verdict(Outcome.regressed, failed, tuple(findings))
    uncertain = tuple(f.reason for f in findings if f.uncertain)
    if summary.pair.pairs < MIN_PAIRS_TO_PASS:
        uncertain += (f"only {summary.pair.pairs} questions answered by both: too few to pass (at least "
                      f"{MIN_PAIRS_TO_PASS})",)
    if uncertain:  # no breach, but no pass either: a shadow phase mirrors on, a step holds, compare asks for more
        return Verdict(Outcome.inconclusive, uncertain, tuple(findings))
    return Verdict(Outcome.passed, (), tuple(findings))
