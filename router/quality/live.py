"""Answer checks on live traffic during the steps: a sample of each colour's proxied answers is
checked, and a step fails when green's answers are worse than blue's on the same traffic.

The shadow phase judges green before anyone sees it; these checks keep judging once users do, so
a green that drifts (a different prompt mix, a long conversation, a new question type) is rolled
back like one that errors. Sampling bounds the CPU; the tally keeps the most recent answers only.
"""

from __future__ import annotations

import random
from collections import deque

from pydantic import BaseModel, ConfigDict, Field

from router.quality.checks import AnswerChecks, CheckRates, check_answer, rates
from router.quality.verdict import COLOURS, CompareLimits, Sides, check_findings
from router.weights import Colour

KEPT = 5000  # answers remembered per colour
DEFAULT_LIMITS = CompareLimits()


class LiveCheckOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="check a sample of both colours' answers during the steps")
    percent: float = Field(20.0, gt=0, le=100, description="share of proxied answers that are checked")
    min_answers: int = Field(20, ge=1, description="green answers a step needs before its checks count")


class LiveChecks:
    """Each colour's recent checked answers, with the time they ended."""

    def __init__(self, options: LiveCheckOptions) -> None:
        self.options = options
        self.active = False  # only while a rollout walks its steps: no cost on the hot path otherwise
        self._recent: dict[Colour, deque[tuple[float, AnswerChecks]]] = {c: deque(maxlen=KEPT) for c in Colour}

    def sampled(self) -> bool:
        return self.active and self.options.enabled and random.random() * 100 < self.options.percent

    def add(self, colour: Colour, answer: tuple[str, str | None], now: float) -> AnswerChecks:
        checks = check_answer(*answer)
        self._recent[colour].append((now, checks))
        return checks

    def rates(self, colour: Colour, since: float) -> CheckRates:
        """The shares of failed checks among `colour`'s answers that ended at or after `since`."""
        return rates(checks for at, checks in self._recent[colour] if at >= since)


def answer_findings(green: CheckRates, blue: CheckRates, min_answers: int,
                    limits: CompareLimits = DEFAULT_LIMITS, sides: Sides = COLOURS) -> tuple[str, ...]:
    """Why the canary's answers ("green") fail the step (empty when they do not, or when there are too
    few to say)."""
    if green.answers < min_answers:
        return ()
    return tuple(f"{f.reason} over {green.answers} {sides.candidate} answers"
                 for f in check_findings(green, blue, limits, sides) if not f.passed)
