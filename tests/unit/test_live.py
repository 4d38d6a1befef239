"""Live answer checks: per-colour rates over a step, and when green's answers fail the step."""

from __future__ import annotations

from router.quality.checks import CheckRates
from router.quality.live import LiveCheckOptions, LiveChecks, LiveFindings, answer_findings
from router.weights import Colour

RUSSIAN = ("Договор аренды заключается в письменной форме, если срок превышает один год.", "stop")
ENGLISH = ("The lease must be made in writing when its term is longer than one year, as the code says.", "stop")


def test_rates_count_only_the_evidence_since_the_step_began() -> None:
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
    assert len(found.failed) == 1 and not found.undecided
    assert "non-Russian answers: green 90.0 %" in found.failed[0] and "over 40 green answers" in found.failed[0]
    assert answer_findings(rates(40, truncated=0.6), rates(40, truncated=0.6), min_answers=20) == LiveFindings()


def test_too_few_checked_answers_or_a_difference_within_noise_holds_the_step() -> None:
    few = answer_findings(rates(10, wrong_language=0.9), rates(40), min_answers=20)
    assert not few.failed and few.undecided == ("only 10 of 20 green answers checked so far",)
    assert answer_findings(rates(0), rates(0), min_answers=20) == LiveFindings()  # no answers to read: no hold
    # 15 % of 20 against 0 %: over the 10 % limit and the 5 % tolerance, but 20 answers could show it by chance.
    noisy = answer_findings(rates(20, wrong_language=0.15), rates(20), min_answers=20)
    assert not noisy.failed and len(noisy.undecided) == 1 and "more needed" in noisy.undecided[0]
    # The same share over 400 answers each is no longer noise.
    assert answer_findings(rates(400, wrong_language=0.15), rates(400), min_answers=20).failed


def test_every_answer_is_checked_until_the_step_has_enough_then_a_sample() -> None:
    off = LiveChecks(LiveCheckOptions(enabled=False))
    off.active = True
    assert not off.sampled(Colour.green)
    checks = LiveChecks(LiveCheckOptions(percent=1, min_answers=5))
    assert not checks.sampled(Colour.green)  # no rollout walking its steps: nothing is checked
    checks.active = True
    checks.begin_step(100.0)
    for at in range(5):
        assert checks.sampled(Colour.green)
        checks.add(Colour.green, RUSSIAN, now=100.0 + at)
    assert checks.sampled(Colour.blue)  # blue has none yet
    assert sum(checks.sampled(Colour.green) for _ in range(2000)) < 60  # now about 1 %
    checks.begin_step(200.0)  # a new step (or a failed check's fresh window): all again
    assert checks.sampled(Colour.green)


def test_the_stable_colours_recent_answers_stand_in_when_it_had_too_few_in_the_step() -> None:
    """A last step at 100 % leaves the stable colour no traffic: its earlier answers are the baseline."""
    checks = LiveChecks(LiveCheckOptions(min_answers=3))
    cut = ("Договор аренды заключается в письменной форме, если срок", "length")
    for at in (1.0, 2.0, 3.0):
        checks.add(Colour.blue, cut, now=at)  # blue truncates as well, in an earlier step
    checks.add(Colour.blue, RUSSIAN, now=50.0)
    assert checks.baseline(Colour.blue, since=40.0).answers == 4  # one in the step: its history instead
    for at in (41.0, 42.0):
        checks.add(Colour.blue, RUSSIAN, now=at)
    assert checks.baseline(Colour.blue, since=40.0).answers == 3  # enough in the step: the step's own


def test_no_readable_canary_answer_while_the_stable_colour_had_them_holds() -> None:
    found = answer_findings(rates(0), rates(40), min_answers=20)
    assert not found.failed and found.undecided == ("no readable green answer among its requests while blue gave 40",)
