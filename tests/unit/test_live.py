"""Live answer checks: per-colour rates over a step, and when green's answers fail the step."""

from __future__ import annotations

from router.quality.checks import CheckRates
from router.quality.live import LiveCheckOptions, LiveChecks, answer_findings
from router.weights import Colour

RUSSIAN = ("Договор аренды заключается в письменной форме, если срок превышает один год.", "stop")
ENGLISH = ("The lease must be made in writing when its term is longer than one year, as the code says.", "stop")


def test_rates_count_only_the_answers_since_the_step_began() -> None:
    checks = LiveChecks(LiveCheckOptions())
    checks.add(Colour.green, ENGLISH, now=10.0)
    for at in (20.0, 21.0, 22.0):
        checks.add(Colour.green, RUSSIAN, now=at)
    checks.add(Colour.green, ENGLISH, now=23.0)
    rates = checks.rates(Colour.green, since=20.0)
    assert rates.answers == 4 and rates.wrong_language == 0.25
    assert checks.rates(Colour.blue, since=0.0).answers == 0


def rates(answers: int, wrong_language: float = 0.0, truncated: float = 0.0) -> CheckRates:
    return CheckRates(answers, 0.0, wrong_language, 0.0, truncated, 0.0)


def test_a_step_fails_when_green_is_over_a_limit_and_worse_than_blue() -> None:
    found = answer_findings(rates(40, wrong_language=0.9), rates(40), min_answers=20)
    assert len(found) == 1 and "non-Russian answers: green 90.0 %" in found[0] and "over 40 green answers" in found[0]
    assert answer_findings(rates(40, truncated=0.6), rates(40, truncated=0.6), min_answers=20) == ()  # both alike
    assert answer_findings(rates(10, wrong_language=0.9), rates(40), min_answers=20) == ()  # too few to say


def test_sampling_follows_the_percent_and_the_switch() -> None:
    off = LiveChecks(LiveCheckOptions(enabled=False))
    off.active = True
    assert not off.sampled()
    always = LiveChecks(LiveCheckOptions(percent=100))
    assert not always.sampled()  # no rollout walking its steps: nothing is checked
    always.active = True
    assert all(always.sampled() for _ in range(100))
