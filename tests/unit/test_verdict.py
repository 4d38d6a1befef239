"""The comparison verdict: green regresses only when it breaks a limit and is worse than blue."""

from __future__ import annotations

from dataclasses import replace

import pytest

from router.quality.checks import CheckRates
from router.quality.summary import ColourSummary, PairSummary, Summary
from router.quality.verdict import CompareLimits, Outcome, Sides, gap_finding, judge_comparison, rate_finding

CLEAN = CheckRates(answers=20, empty=0.0, wrong_language=0.0, repetitive=0.0, truncated=0.0, refusal=0.0)


def colour(requests: int = 20, errors: int = 0, gap: float | None = 0.05, **rates: float) -> ColourSummary:
    answered = requests - errors
    return ColourSummary(
        requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
        checks=replace(CLEAN, answers=answered, **rates), latency_p50_s=1.0, latency_p95_s=2.0, ttft_p50_s=0.1,
        ttft_p95_s=0.2, gap_p95_s=gap, per_token_p50_s=0.02, tokens_per_s_p50=40.0, chars_p50=300.0,
        chrf_reference_p50=30.0,
    )


def summary(blue: ColourSummary | None = None, green: ColourSummary | None = None, ratio: float | None = 1.0,
            chrf: float | None = 45.0) -> Summary:
    return Summary(blue or colour(), green or colour(), PairSummary(pairs=20, length_ratio_p50=ratio, chrf_p50=chrf))


@pytest.mark.parametrize(
    ("case", "outcome", "breached"),
    [
        (summary(), Outcome.passed, set()),
        (summary(green=colour(wrong_language=1.0)), Outcome.regressed, {"non_russian_rate"}),
        (summary(green=colour(empty=1.0), ratio=0.0), Outcome.regressed, {"empty_rate", "length_ratio"}),
        (summary(green=colour(repetitive=1.0, truncated=1.0), ratio=3.0), Outcome.regressed,
         {"repetition_rate", "truncated_rate"}),
        (summary(green=colour(refusal=0.3)), Outcome.regressed, {"refusal_rate"}),
        (summary(green=colour(errors=5)), Outcome.regressed, {"error_rate"}),
        # Small shares under the limits pass.
        (summary(green=colour(wrong_language=0.05, empty=0.05, repetitive=0.1)), Outcome.passed, set()),
        # Both colours truncate as often: the question set is to blame, not green.
        (summary(blue=colour(truncated=0.6), green=colour(truncated=0.62)), Outcome.passed, set()),
        (summary(blue=colour(truncated=0.3), green=colour(truncated=0.7)), Outcome.regressed, {"truncated_rate"}),
        # ... and a difference that 20 answers each can show by chance is not a regression either.
        (summary(blue=colour(truncated=0.3), green=colour(truncated=0.55)), Outcome.passed, set()),
        # Length ratios out of bounds, either way.
        (summary(ratio=0.3), Outcome.regressed, {"length_ratio"}),
        (summary(ratio=5.0), Outcome.regressed, {"length_ratio"}),
        (summary(ratio=None), Outcome.passed, set()),
        # chrF is off by default ...
        (summary(chrf=2.0), Outcome.passed, set()),
        # Streams that stall: green's gap p95 over 3× blue's and over the half second a reader notices.
        (summary(blue=colour(gap=0.2), green=colour(gap=0.9)), Outcome.regressed, {"gap_ratio"}),
        (summary(blue=colour(gap=0.2), green=colour(gap=0.55)), Outcome.passed, set()),  # within 3×
        (summary(blue=colour(gap=0.01), green=colour(gap=0.3)), Outcome.passed, set()),  # 30× but unnoticeable
        (summary(blue=colour(gap=None), green=colour(gap=2.0)), Outcome.passed, set()),  # nothing to weigh against
        # Green answering nothing is a regression; blue answering nothing leaves nothing to compare with.
        (summary(green=colour(errors=20)), Outcome.regressed, {"error_rate"}),
        (summary(blue=colour(errors=20)), Outcome.inconclusive, set()),
        (summary(blue=colour(requests=0), green=colour(requests=0)), Outcome.inconclusive, set()),
    ],
)
def test_outcome_and_breaches(case: Summary, outcome: Outcome, breached: set[str]) -> None:
    verdict = judge_comparison(case)
    assert verdict.outcome is outcome
    assert {f.name for f in verdict.findings if not f.passed} == breached
    assert len(verdict.reasons) == (len(breached) if outcome is not Outcome.inconclusive else 1)


def test_limits_are_configurable() -> None:
    case = summary(green=colour(wrong_language=0.3), chrf=10.0)
    assert judge_comparison(case).regressed
    assert judge_comparison(case, CompareLimits(max_non_russian_rate=0.5)).outcome is Outcome.passed
    strict = judge_comparison(summary(chrf=10.0), CompareLimits(min_chrf=20.0))
    assert strict.regressed and "median chrF green vs blue: 10.0" in strict.reasons[0]


def test_reasons_carry_the_numbers() -> None:
    verdict = judge_comparison(summary(green=colour(wrong_language=1.0)))
    assert verdict.reasons == ("non-Russian answers: green 100.0 % > limit 10.0 % (blue 0.0 %)",)
    assert "blue answered none of its 20 requests" in judge_comparison(summary(blue=colour(errors=20))).reasons[0]


@pytest.mark.parametrize(
    ("green", "blue", "passed"),
    [(0.0, 0.0, True), (0.1, 0.0, True), (0.11, 0.0, False), (0.5, 0.46, True), (0.5, 0.44, False)],
)
def test_rate_finding_is_absolute_and_relative(green: float, blue: float, passed: bool) -> None:
    assert rate_finding("x", "x", green, blue, limit=0.1, tolerance=0.05).passed is passed


def test_gap_finding_says_how_far_over() -> None:
    finding = gap_finding(0.9, 0.2, CompareLimits())
    assert not finding.passed and finding.limit == pytest.approx(0.6)
    assert finding.reason.startswith("inter-chunk gap p95: green 900 ms, 4.5× blue's 200 ms (> 600 ms allowed")


def test_reasons_name_the_colours_when_the_candidate_is_blue() -> None:
    blue_is_candidate = Sides(candidate="blue", baseline="green")
    verdict = judge_comparison(summary(green=colour(wrong_language=1.0), ratio=0.2), sides=blue_is_candidate)
    assert "non-Russian answers: blue 100.0 % > limit 10.0 % (green 0.0 %)" in verdict.reasons
    assert "median answer length blue/green: 0.20 (allowed 0.5–4)" in verdict.reasons
