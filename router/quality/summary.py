"""Per-colour and per-pair figures over a whole comparison: the numbers the verdict weighs."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from router.quality.checks import CheckRates, percentile, rates
from router.quality.compare import AnswerRecord, QuestionResult


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval for the median (the sign test's): the k-th smallest and k-th largest
    value, k the largest rank with P(Binomial(n, 1/2) < k) ≤ (1 - confidence) / 2. None when there are
    too few values for any such interval (fewer than 6 at 95 %). Exact integer arithmetic: any n works."""
    ordered = sorted(values)
    n = len(ordered)
    tail = Fraction(1 - confidence).limit_denominator(10**6) / 2
    whole = 1 << n  # 2**n: P(B < k) = sum of C(n, i) for i < k, over 2**n
    below, term, k = 0, 1, 0  # below = sum of C(n, i) for i < k; term = C(n, k)
    while k < n // 2 and (below + term) * tail.denominator <= tail.numerator * whole:
        below += term
        term = term * (n - k) // (k + 1)
        k += 1
    return (ordered[k - 1], ordered[n - k]) if k >= 1 else None


def _p(values: Sequence[float | None], q: float) -> float | None:
    return percentile(sorted(v for v in values if v is not None), q)


@dataclass(frozen=True)
class ColourSummary:
    requests: int
    errors: int
    error_rate: float
    checks: CheckRates  # over the answered requests
    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    gap_p95_s: float | None  # the 95th percentile of the per-answer inter-chunk p95
    per_token_p50_s: float | None
    tokens_per_s_p50: float | None
    chars_p50: float | None
    chrf_reference_p50: float | None


@dataclass(frozen=True)
class PairSummary:
    pairs: int  # questions both colours answered
    length_ratio_p50: float | None  # green / blue, median over pairs
    chrf_p50: float | None  # green against blue, median over pairs
    length_ratio_interval: tuple[float, float] | None = None  # 95 % for that median; None: too few pairs to judge


@dataclass(frozen=True)
class Summary:
    blue: ColourSummary
    green: ColourSummary
    pair: PairSummary

    def colour(self, name: str) -> ColourSummary:
        return self.blue if name == "blue" else self.green


def summarise_colour(records: Sequence[AnswerRecord]) -> ColourSummary:
    answered = [r for r in records if r.ok]
    errors = len(records) - len(answered)
    return ColourSummary(
        requests=len(records), errors=errors, error_rate=errors / len(records) if records else 0.0,
        checks=rates(r.checks for r in answered if r.checks is not None),
        latency_p50_s=_p([r.time_s for r in answered], 50), latency_p95_s=_p([r.time_s for r in answered], 95),
        ttft_p50_s=_p([r.ttft_s for r in answered], 50), ttft_p95_s=_p([r.ttft_s for r in answered], 95),
        gap_p95_s=_p([r.gap_p95_s for r in answered], 95),
        per_token_p50_s=_median([r.per_token_s for r in answered]),
        tokens_per_s_p50=_median([r.tokens_per_s for r in answered]),
        chars_p50=_median([float(r.checks.chars) for r in answered if r.checks is not None]),
        chrf_reference_p50=_median([r.chrf_reference for r in answered]),
    )


def summarise(results: Sequence[QuestionResult]) -> Summary:
    pairs = [pair for result in results if (pair := result.pair) is not None]
    return Summary(
        blue=summarise_colour([r.answers["blue"] for r in results if "blue" in r.answers]),
        green=summarise_colour([r.answers["green"] for r in results if "green" in r.answers]),
        pair=PairSummary(
            pairs=len(pairs),
            length_ratio_p50=_median([p.length_ratio for p in pairs]),
            chrf_p50=_median([p.chrf for p in pairs]),
            length_ratio_interval=median_interval([p.length_ratio for p in pairs if p.length_ratio is not None]),
        ),
    )


# ---- figures as text, for the console table and the HTML report -----------------------------------


def fmt(value: float | None, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}{unit}"


def pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def figure_rows(blue: ColourSummary, green: ColourSummary) -> list[tuple[str, str, str]]:
    """(label, blue's figure, green's figure) for every figure a reader compares."""
    rows: list[tuple[str, Callable[[ColourSummary], str]]] = [
        ("requests", lambda c: str(c.requests)),
        ("failed requests", lambda c: f"{c.errors} ({pct(c.error_rate)})"),
        ("empty answers", lambda c: pct(c.checks.empty)),
        ("non-Russian answers", lambda c: pct(c.checks.wrong_language)),
        ("looping answers", lambda c: pct(c.checks.repetitive)),
        ("cut-off answers (length)", lambda c: pct(c.checks.truncated)),
        ("refusals", lambda c: pct(c.checks.refusal)),
        ("latency p50 / p95, s", lambda c: f"{fmt(c.latency_p50_s)} / {fmt(c.latency_p95_s)}"),
        ("time to first token p50 / p95, s", lambda c: f"{fmt(c.ttft_p50_s)} / {fmt(c.ttft_p95_s)}"),
        ("inter-chunk gap p95, s", lambda c: fmt(c.gap_p95_s)),
        ("per-token latency p50, s", lambda c: fmt(c.per_token_p50_s, digits=4)),
        ("tokens/s p50", lambda c: fmt(c.tokens_per_s_p50, digits=1)),
        ("answer length p50, chars", lambda c: fmt(c.chars_p50, digits=0)),
        ("chrF vs reference p50", lambda c: fmt(c.chrf_reference_p50, digits=1)),
    ]
    return [(label, render(blue), render(green)) for label, render in rows]
