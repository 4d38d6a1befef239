"""The shadow phase's bookkeeping: blue's answer and green's mirrored answer to the same live request,
checked and tallied, and the verdict on them.

Pure: the proxy hands in the raw bytes each colour sent (a JSON answer or server-sent events, on
either API) and, for streams, the p95 gap between their chunks; the controller reads the verdict.
Memory stays bounded whatever the traffic: the tally keeps counts, and only the most recent pair
figures (length ratio, chrF, gaps) for the medians and percentiles.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from router.quality.checks import CHECK_NAMES, AnswerChecks, CheckRates, check_answer, chrf, percentile
from router.quality.compare import OPENAI_PATH, Api, parse_event
from router.quality.summary import ColourSummary, PairSummary, Summary, median_interval
from router.quality.verdict import COLOURS, CompareLimits, Outcome, Sides, Verdict, judge_comparison

DEFAULT_LIMITS = CompareLimits()
MAX_RATIOS = 1000  # medians and percentiles are taken over the most recent pairs


def _recent() -> deque[float]:
    return deque(maxlen=MAX_RATIOS)


def _median(values: deque[float]) -> float | None:
    return statistics.median(values) if values else None


def answer_of(path: str, body: bytes) -> tuple[str, str | None] | None:
    """(answer text, finish reason) from what a backend sent, streamed or not; None when it is not an answer."""
    api = Api.openai if path == OPENAI_PATH else Api.legal
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return _json_answer(api, data)
    parts: list[str] = []
    finish: str | None = None
    for line in text.splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        try:
            event = parse_event(api, json.loads(line[5:]))
        except ValueError:
            continue
        if event.error:
            return None
        parts.append(event.delta)
        finish = event.finish_reason or finish
    return ("".join(parts), finish) if parts or finish else None


def _json_answer(api: Api, data: Any) -> tuple[str, str | None] | None:
    if not isinstance(data, dict) or "error" in data:
        return None
    if api is Api.legal:
        return str(data.get("answer") or ""), data.get("finish_reason")
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return str(content or ""), choice.get("finish_reason")


@dataclass
class _ColourTally:
    requests: int = 0
    errors: int = 0
    answers: int = 0
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECK_NAMES, 0))
    gaps: deque[float] = field(default_factory=_recent)  # each recent stream's inter-chunk gap p95

    def add(self, checks: AnswerChecks | None, gap_p95_s: float | None) -> None:
        self.requests += 1
        if checks is None:
            self.errors += 1
            return
        self.answers += 1
        for name in checks.failures:
            self.failed[name] += 1
        if gap_p95_s is not None:
            self.gaps.append(gap_p95_s)

    def summary(self) -> ColourSummary:
        def share(name: str) -> float:
            return self.failed[name] / self.answers if self.answers else 0.0

        rates = CheckRates(self.answers, *(share(name) for name in CHECK_NAMES))
        return ColourSummary(
            requests=self.requests, errors=self.errors, error_rate=self.errors / self.requests if self.requests else 0.0,
            checks=rates, latency_p50_s=None, latency_p95_s=None, ttft_p50_s=None, ttft_p95_s=None,
            gap_p95_s=percentile(sorted(self.gaps), 95),
            per_token_p50_s=None, tokens_per_s_p50=None, chars_p50=None, chrf_reference_p50=None)


@dataclass
class ShadowTally:
    """What the mirror saw since the shadow phase began: "blue" is the stable colour's side, "green" the
    canary's; `sides` says which colours those are."""

    sides: Sides = COLOURS
    skipped: int = 0  # mirrors not started (sampling aside): too many in flight
    over_rate: int = 0  # sampled requests not mirrored: max_per_s were started in the last second
    longest_s: float = 0.0  # the longest the canary took to answer a mirror in full
    blue: _ColourTally = field(default_factory=_ColourTally)
    green: _ColourTally = field(default_factory=_ColourTally)
    ratios: deque[float] = field(default_factory=_recent)
    similarities: deque[float] = field(default_factory=_recent)  # chrF of the candidate's answer against the stable's

    def add(self, blue: tuple[str, str | None], green: tuple[str, str | None] | None,
            gaps_s: tuple[float | None, float | None] = (None, None), similarity: bool = True) -> None:
        """One pair: blue's answer, and green's (None when green failed: an error, a timeout, no answer),
        with each stream's inter-chunk gap p95 (None for a JSON answer). chrF costs about a millisecond
        per pair, so the caller may leave it out of some pairs (`similarity`)."""
        blue_checks = check_answer(*blue)
        self.blue.add(blue_checks, gaps_s[0])
        self.green.add(check_answer(*green) if green is not None else None, gaps_s[1])
        if green is None or not blue_checks.chars:
            return
        self.ratios.append(len(green[0].strip()) / blue_checks.chars)
        score = chrf(green[0], blue[0]) if similarity else None
        if score is not None:
            self.similarities.append(score)

    @property
    def pairs(self) -> int:
        return self.green.requests

    def summary(self) -> Summary:
        pair = PairSummary(self.pairs, _median(self.ratios), _median(self.similarities), median_interval(self.ratios))
        return Summary(self.blue.summary(), self.green.summary(), pair)

    def as_dict(self) -> dict[str, Any]:
        """The figures `/admin/status` shows, each side under its colour's name."""
        summary = self.summary()
        canary, stable = summary.green, summary.blue
        return {"pairs": self.pairs, "skipped": self.skipped, "over_rate": self.over_rate, "canary": self.sides.candidate,
                "stable": self.sides.baseline, "canary_errors": canary.errors,
                self.sides.candidate: {**vars(canary.checks), "gap_p95_s": canary.gap_p95_s},
                self.sides.baseline: {**vars(stable.checks), "gap_p95_s": stable.gap_p95_s},
                "length_ratio_p50": summary.pair.length_ratio_p50,
                "length_ratio_interval": summary.pair.length_ratio_interval, "chrf_p50": summary.pair.chrf_p50}


def shadow_verdict(tally: ShadowTally, min_pairs: int, limits: CompareLimits = DEFAULT_LIMITS,
                   overdue: int = 0) -> Verdict:
    """The canary's answers against the stable colour's on the same requests; too few pairs is
    inconclusive, never a pass. `overdue`: mirrors still waiting for the canary longer than any answer
    it gave. A canary that hangs on some requests answers the others quickly, and judging only the
    answers that came back would pass it: a pass stands only if it still passes with those counted as
    failures (until they end, one way or the other)."""
    if tally.pairs < min_pairs:
        return Verdict(Outcome.inconclusive, (f"only {tally.pairs} of {min_pairs} mirrored requests so far",))
    summary = tally.summary()
    verdict = judge_comparison(summary, limits, tally.sides)
    if verdict.outcome is Outcome.passed and overdue:
        green = summary.green
        failed = dataclasses.replace(green, requests=green.requests + overdue, errors=green.errors + overdue,
                                     error_rate=(green.errors + overdue) / (green.requests + overdue))
        if judge_comparison(dataclasses.replace(summary, green=failed), limits, tally.sides).outcome is not Outcome.passed:
            return Verdict(Outcome.inconclusive, (
                f"{overdue} mirrored requests have waited longer for {tally.sides.candidate}'s answer than any it "
                f"gave ({tally.longest_s:.1f} s): as failures they would fail it; waiting for them",), verdict.findings)
    counted = f" in {tally.pairs} mirrored requests"
    return Verdict(verdict.outcome, tuple(reason + counted for reason in verdict.reasons), verdict.findings)
