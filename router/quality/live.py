"""Answer checks on live traffic during the steps: each colour's proxied answers are checked (all of
them until the step has `min_answers`, then a sample), and a step fails when green's answers are
worse than blue's on the same traffic, and holds while there are too few to say.

The shadow phase judges green before anyone sees it; these checks keep judging once users do, so
a green that drifts (a different prompt mix, a long conversation, a new question type) is rolled
back like one that errors. Sampling bounds the CPU; the tally keeps the most recent answers only.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from router.quality.checks import AnswerChecks, CheckRates, check_answer, rates
from router.quality.verdict import COLOURS, CompareLimits, Sides, check_findings
from router.weights import Colour

KEPT = 5000  # answers remembered per colour
DEFAULT_LIMITS = CompareLimits()


class LiveCheckOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="check both colours' answers during the steps (all until a step has "
                                            "min_answers, then a sample)")
    percent: float = Field(20.0, gt=0, le=100, description="share of proxied answers checked once a step has "
                                                            "min_answers of a colour (all are, until then)")
    min_answers: int = Field(20, ge=1, description="checked canary answers a step needs; fewer holds it")


@dataclass(frozen=True)
class LiveFindings:
    failed: tuple[str, ...] = ()  # why the canary's answers fail the step
    undecided: tuple[str, ...] = ()  # why they cannot pass it yet (too few, or within sampling noise): it holds


class LiveChecks:
    """Each colour's recent checked answers, with the time they ended. Every answer is checked until the
    step has `min_answers` of that colour, then a `percent` sample: a step is never judged on fewer
    checked answers than it needs, and a busy router's CPU stays bounded."""

    def __init__(self, options: LiveCheckOptions) -> None:
        self.options = options
        self.active = False  # only while a rollout walks its steps: no cost on the hot path otherwise
        self._recent: dict[Colour, deque[tuple[float, AnswerChecks]]] = {c: deque(maxlen=KEPT) for c in Colour}
        self._step_since = 0.0
        self._in_step = {c: 0 for c in Colour}  # answers checked since the step began

    def begin_step(self, since: float) -> None:
        """The step (or its judging window, which a failed check starts over) began at `since`."""
        if since != self._step_since:
            self._step_since, self._in_step = since, {c: 0 for c in Colour}

    def sampled(self, colour: Colour) -> bool:
        if not (self.active and self.options.enabled):
            return False
        return self._in_step[colour] < self.options.min_answers or random.random() * 100 < self.options.percent

    def add(self, colour: Colour, answer: tuple[str, str | None], now: float) -> AnswerChecks:
        checks = check_answer(*answer)
        self._recent[colour].append((now, checks))
        if now >= self._step_since:
            self._in_step[colour] += 1
        return checks

    def rates(self, colour: Colour, since: float) -> CheckRates:
        """The shares of failed checks among `colour`'s answers that ended at or after `since`."""
        return rates(checks for at, checks in self._recent[colour] if at >= since)

    def baseline(self, colour: Colour, since: float) -> CheckRates:
        """The stable colour's shares to weigh the canary's against: since `since`, or its recent answers
        (up to KEPT) when it had fewer than `min_answers` since then (a last step at 100 % leaves it none)."""
        current = self.rates(colour, since)
        return current if current.answers >= self.options.min_answers else self.rates(colour, 0.0)


def answer_findings(green: CheckRates, blue: CheckRates, min_answers: int,
                    limits: CompareLimits = DEFAULT_LIMITS, sides: Sides = COLOURS) -> LiveFindings:
    """The canary's ("green") answers against the stable colour's over the step: failed, undecided (too few
    checked, or worse only within the noise of that many), or neither. No readable answer from either
    colour means the traffic carries none the checks can read (not a chat route): nothing to judge,
    nothing held; none from the canary while the stable colour had some holds the step."""
    if green.answers == 0 and blue.answers >= min_answers:
        return LiveFindings(undecided=(f"no readable {sides.candidate} answer among its requests while "
                                       f"{sides.baseline} gave {blue.answers}",))
    if 0 < green.answers < min_answers:
        return LiveFindings(undecided=(f"only {green.answers} of {min_answers} {sides.candidate} answers checked so "
                                       "far",))
    findings = check_findings(green, blue, limits, sides)
    counted = f" over {green.answers} {sides.candidate} answers"
    return LiveFindings(failed=tuple(f.reason + counted for f in findings if not f.passed),
                        undecided=tuple(f.reason + counted for f in findings if f.uncertain))
