"""The comparison verdict: green regresses only when it breaks a limit and is worse than blue."""

from __future__ import annotations

import asyncio
import socket
import statistics
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from router.quality.checks import CheckLimits, CheckRates
from router.quality.command import judge_run
from router.quality.compare import (
    AnswerRecord,
    CompareOptions,
    QuestionResult,
    Reply,
    ask,
    endpoint_of,
    record,
    setup_problem,
)
from router.quality.questions import Question
from router.quality.summary import ColourSummary, PairSummary, Summary, median_interval, summarise
from router.quality.verdict import (
    CompareLimits,
    Outcome,
    Sides,
    Verdict,
    gap_finding,
    judge_comparison,
    length_finding,
    rate_finding,
)

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
    interval = None if ratio is None else (ratio, ratio)  # as if every pair had the median's ratio
    return Summary(blue or colour(), green or colour(),
                   PairSummary(pairs=20, length_ratio_p50=ratio, chrf_p50=chrf, length_ratio_interval=interval))


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
        # ... and a difference that 20 answers each can show by chance is no regression, nor a pass yet.
        (summary(blue=colour(truncated=0.3), green=colour(truncated=0.55)), Outcome.inconclusive, set()),
        (summary(blue=colour(truncated=0.5), green=colour(truncated=0.55)), Outcome.passed, set()),  # within 5 %
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


@pytest.mark.parametrize(("n", "ranks"), [(5, None), (6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (100, (40, 61))])
def test_the_median_interval_is_the_sign_tests(n: int, ranks: tuple[int, int] | None) -> None:
    """Ranks (1-based) from binomial tables: the widest that keep each tail at most 2.5 %."""
    values = [float(v) for v in reversed(range(1, n + 1))]  # unsorted on purpose
    assert median_interval(values) == (None if ranks is None else (float(ranks[0]), float(ranks[1])))


def test_a_few_short_answers_of_a_healthy_model_are_noise_but_consistently_short_ones_are_not() -> None:
    limits = CompareLimits()
    noisy = [0.2, 0.3, 0.35, 0.4, 0.44, 0.48, 0.6, 0.9, 1.1, 1.3]  # median 0.46: below 0.5, but not clearly
    finding = length_finding(statistics.median(noisy), median_interval(noisy), limits, "green/blue")
    assert finding.passed and finding.reason == "median answer length green/blue: 0.46 (95 % interval 0.30–1.10, " \
                                               "allowed 0.5–4)"
    short = [0.1, 0.12, 0.15, 0.2, 0.2, 0.22, 0.25, 0.3, 0.35, 0.45]
    assert not length_finding(statistics.median(short), median_interval(short), limits, "green/blue").passed
    long = [4.5, 5.0, 5.5, 6.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0]
    assert not length_finding(statistics.median(long), median_interval(long), limits, "green/blue").passed
    few = [0.1, 0.1, 0.1, 0.1, 0.1]  # five pairs: no interval, so no breach, but no pass either
    finding = length_finding(0.1, median_interval(few), limits, "green/blue")
    assert finding.passed and finding.uncertain and "too few pairs to judge: more needed" in finding.reason
    assert not length_finding(1.0, median_interval([1.0] * 5), limits, "green/blue").uncertain


def test_gap_finding_says_how_far_over() -> None:
    finding = gap_finding(0.9, 0.2, CompareLimits())
    assert not finding.passed and finding.limit == pytest.approx(0.6)
    assert finding.reason.startswith("inter-chunk gap p95: green 900 ms, 4.5× blue's 200 ms (> 600 ms allowed")


def test_reasons_name_the_colours_when_the_candidate_is_blue() -> None:
    blue_is_candidate = Sides(candidate="blue", baseline="green")
    verdict = judge_comparison(summary(green=colour(wrong_language=1.0), ratio=0.2), sides=blue_is_candidate)
    assert "non-Russian answers: blue 100.0 % > limit 10.0 % (green 0.0 %)" in verdict.reasons
    assert "median answer length blue/green: 0.20 (95 % interval 0.20–0.20, allowed 0.5–4)" in verdict.reasons


# --- `bluegreen compare`: a wrong URL is a set-up problem (exit 1), not green's regression (exit 2) ---

ENDPOINTS = {"blue": endpoint_of("http://127.0.0.1:8001"), "green": endpoint_of("http://127.0.0.1:8080/api")}


def answered(colour: str, reply: Reply) -> AnswerRecord:
    return record(colour, reply, None, CheckLimits())


def http_error(status: int, message: str = "Not Found") -> Reply:
    return Reply(False, time_s=0.01, status=status, error=f"HTTP {status}: {message}")


GOOD = Reply(True, "Договор — это соглашение сторон.", "stop", 8, 0.5, (0.1, 0.2), 200)
REFUSED = Reply(False, time_s=0.01, error="ConnectError: [Errno 111] Connection refused", connected=False)
TIMEOUT = Reply(False, "Догов", time_s=300.0, error="no complete answer within 300 s")


def results_of(blue: list[Reply], green: list[Reply]) -> list[QuestionResult]:
    questions = [QuestionResult(Question(f"вопрос {i}"), 0) for i in range(len(blue))]
    for result, b, g in zip(questions, blue, green, strict=True):
        result.answers = {"blue": answered("blue", b), "green": answered("green", g)}
    return questions


def judged(blue: list[Reply], green: list[Reply]) -> Verdict:
    results = results_of(blue, green)
    return judge_run(ENDPOINTS, results, summarise(results), CompareLimits())


@pytest.mark.parametrize("status", [404, 401, 403, 405, 422])
def test_the_same_4xx_on_every_request_is_a_wrong_url_not_a_regression(status: int) -> None:
    verdict = judged([GOOD] * 12, [http_error(status)] * 12)
    assert verdict.outcome is Outcome.inconclusive and len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith(
        f"green answered {status} to all 12 requests: check --green (the backend's base URL, e.g. http://host:8002);")
    assert "http://127.0.0.1:8080/api/api/v1/chat/legal" in verdict.reasons[0]


def test_no_request_connecting_is_a_wrong_url() -> None:
    verdict = judged([GOOD] * 3, [REFUSED] * 3)
    assert verdict.outcome is Outcome.inconclusive
    assert verdict.reasons == ("green: none of its 3 requests connected to http://127.0.0.1:8080 (ConnectError: "
                               "[Errno 111] Connection refused): check --green (the backend's base URL, e.g. "
                               "http://host:8002)",)


@pytest.fixture
def drops_syns() -> Iterator[str]:
    """A 127.0.0.1 port whose accept queue is full: the kernel drops further SYNs, as a firewalled host does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued: list[socket.socket] = []
    try:
        for _ in range(8):
            client = socket.socket()
            client.settimeout(0.3)
            try:
                client.connect(("127.0.0.1", port))
            except TimeoutError:
                client.close()
                break
            queued.append(client)
        else:
            pytest.skip("the kernel accepts every connection here: no SYN is dropped")
        yield f"http://127.0.0.1:{port}"
    finally:
        for client in queued:
            client.close()
        server.close()


def test_a_host_that_drops_syns_is_a_wrong_url(drops_syns: str) -> None:
    async def three() -> list[Reply]:
        async with httpx.AsyncClient(trust_env=False) as client:
            return [await ask(client, endpoint_of(drops_syns), "вопрос", CompareOptions(timeout_s=0.6))
                    for _ in range(3)]

    replies = asyncio.run(three())
    assert [(reply.error, reply.connected) for reply in replies] == [("ConnectTimeout", False)] * 3
    verdict = judged([GOOD] * 3, replies)
    assert verdict.outcome is Outcome.inconclusive
    assert verdict.reasons[0].startswith("green: none of its 3 requests connected to")


@pytest.mark.parametrize(
    "green",
    [
        [http_error(500, "Internal Server Error")] * 12,  # a green that fails: what compare exists to catch
        [http_error(503, "overloaded")] * 12,
        [TIMEOUT] * 12,
        [http_error(404)] * 11 + [GOOD],  # one answer: the URL is right, the 404s are green's
        [http_error(404)] * 6 + [http_error(422)] * 6,  # not one answer to everything
        [REFUSED] * 6 + [TIMEOUT] * 6,  # some connected, then failed
    ],
)
def test_green_failing_otherwise_stays_a_regression(green: list[Reply]) -> None:
    verdict = judged([GOOD] * 12, green)
    assert verdict.outcome is Outcome.regressed
    assert any(reason.startswith("failed requests: green") for reason in verdict.reasons), verdict.reasons


def test_both_colours_wrong_stays_inconclusive_and_names_both() -> None:
    verdict = judged([http_error(404)] * 3, [http_error(401, "missing token")] * 3)
    assert verdict.outcome is Outcome.inconclusive
    assert [reason.split(":")[0] for reason in verdict.reasons] == ["blue answered 404 to all 3 requests",
                                                                    "green answered 401 to all 3 requests"]
    assert "check --blue (the backend's base URL, e.g. http://host:8001)" in verdict.reasons[0]
    assert verdict.reasons[1].endswith("which said 'missing token'")
    # Blue failing with 5xx: still nothing to compare green with, as before.
    verdict = judged([http_error(500)] * 3, [GOOD] * 3)
    assert verdict.outcome is Outcome.inconclusive and "blue answered none of its 3 requests" in verdict.reasons[0]


def test_a_healthy_pair_is_judged_as_before() -> None:
    assert judged([GOOD] * 6, [GOOD] * 6).outcome is Outcome.passed
    few = judged([GOOD] * 4, [GOOD] * 4)  # too few questions to pass
    assert few.outcome is Outcome.inconclusive and few.reasons[-1].startswith("only 4 questions answered by both")
    assert setup_problem("green", ENDPOINTS["green"], []) is None
