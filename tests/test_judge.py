"""The judge and the rollout state machine: pure, so every rule is checked directly."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.judge import Evidence, JudgeOptions, Outcome, judge, mann_whitney_p
from router.rollout import (
    CommandRefused, Notify, Observation, Phase, RolloutOptions, command, decide, green_bp_for, new_rollout,
)
from router.judge import Verdict
from router.windows import WindowSummary

OPTIONS = JudgeOptions()


def window(requests: int = 100, errors: int = 0, p95: float | None = 1.0, ttft: float | None = 0.2) -> WindowSummary:
    return WindowSummary(span_s=30, requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
                         rps=requests / 30, latency_p50_s=p95, latency_p95_s=p95, latency_p99_s=p95, ttft_p95_s=ttft)


HEALTHY_BLUE = window()


@pytest.mark.parametrize(("green", "outcome", "reason"), [
    (window(), Outcome.passed, "green error rate 0.0 % ≤ 5.0 % over 100 requests"),
    (window(requests=143, errors=17), Outcome.failed, "green error rate 11.9 % > 5.0 % over 143 requests"),
    (window(requests=19), Outcome.inconclusive, "only 19 green requests, fewer than the 20 needed to judge"),
    (window(requests=0), Outcome.inconclusive, "only 0 green requests"),
    (window(p95=2.5), Outcome.failed, "green p95 latency 2500 ms > 2 × blue's 1000 ms"),
    (window(p95=61.0), Outcome.failed, "green p95 latency 61.0 s > 60.0 s"),
    (window(ttft=0.5), Outcome.failed, "green p95 time to first token 500 ms > 2 × blue's 200 ms"),
    (window(ttft=11.0), Outcome.failed, "green p95 time to first token 11.0 s > 10.0 s"),
    (window(requests=100, errors=3), Outcome.failed, "green error rate 3.0 % > 2 × blue's 0.0 %"),
    (window(requests=10, errors=6), Outcome.failed, "green error rate 60.0 % ≥ hard limit 50.0 % over 10 requests"),
])
def test_judge_table(green: WindowSummary, outcome: Outcome, reason: str) -> None:
    verdict = judge(Evidence(green, HEALTHY_BLUE), OPTIONS)
    assert verdict.outcome is outcome
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_without_enough_blue_traffic_only_absolute_limits_apply() -> None:
    verdict = judge(Evidence(window(p95=5.0), window(requests=3)), OPTIONS)
    assert verdict.outcome is Outcome.passed
    assert any("too few to compare" in r for r in verdict.reasons)


def test_hard_breach_is_flagged() -> None:
    verdict = judge(Evidence(window(requests=5, errors=3), HEALTHY_BLUE), OPTIONS)
    assert verdict.outcome is Outcome.failed and verdict.hard


def test_mann_whitney_tells_a_slower_canary_from_noise() -> None:
    fast = tuple(1.0 + (i % 7) * 0.01 for i in range(60))
    slow = tuple(1.5 + (i % 7) * 0.01 for i in range(60))
    assert mann_whitney_p(slow, fast) < 1e-6
    assert mann_whitney_p(fast, slow) > 0.99
    assert 0.3 < mann_whitney_p(fast, fast) < 0.7
    options = JudgeOptions(mann_whitney=True, max_latency_ratio=10)
    verdict = judge(Evidence(window(p95=1.5), window(p95=1.06), slow, fast), options)
    assert verdict.outcome is Outcome.failed and "Mann-Whitney" in verdict.reasons[-1]


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_more_errors_never_improve_the_verdict(requests: int, errors: int, more: int) -> None:
    errors, more = min(errors, requests), min(errors + more, requests)
    rank = {Outcome.passed: 0, Outcome.inconclusive: 1, Outcome.failed: 2}
    fewer = judge(Evidence(window(requests, errors), HEALTHY_BLUE), OPTIONS)
    worse = judge(Evidence(window(requests, more), HEALTHY_BLUE), OPTIONS)
    if fewer.outcome is not Outcome.inconclusive:
        assert rank[worse.outcome] >= rank[fewer.outcome]


# -- the state machine ----------------------------------------------------------------------

ROLLOUT = RolloutOptions(steps=[5, 50, 100], interval_s=10, failures_to_rollback=2, keep_old_s=60)
PASS = Verdict(Outcome.passed, ("fine",))
FAIL = Verdict(Outcome.failed, ("green error rate 12.0 % > 5.0 % over 143 requests",))
HOLD = Verdict(Outcome.inconclusive, ("only 3 green requests",))


def started(now: float = 0.0):
    return new_rollout(None, "blue", ROLLOUT.steps, ROLLOUT.interval_s, now, "admin").rollout


def at_step(step: int, now: float = 100.0):
    r = started()
    return dataclasses.replace(r, phase=Phase.progressing, step=step, step_since=now, phase_since=now)


def test_happy_path_walks_every_phase() -> None:
    r = started()
    assert r.phase is Phase.starting and r.canary == "green"
    r = decide(r, Observation(now=1, canary_ready=False, canary_reason="loading"), ROLLOUT).rollout
    assert r.phase is Phase.starting
    r = decide(r, Observation(now=2), ROLLOUT).rollout
    assert r.phase is Phase.warming
    d = decide(r, Observation(now=3), ROLLOUT)
    assert d.rollout.phase is Phase.progressing and d.traffic.green_bp == 500 and isinstance(d.effects[0], Notify)
    r = d.rollout
    assert not decide(r, Observation(now=12, verdict=PASS), ROLLOUT).changed  # the step is held its interval
    for expected_bp in (5000, 10_000):
        d = decide(r, Observation(now=r.step_since + 10, verdict=PASS), ROLLOUT)
        assert d.traffic.green_bp == expected_bp
        r = d.rollout
    d = decide(r, Observation(now=r.step_since + 10, verdict=PASS), ROLLOUT)
    assert d.rollout.phase is Phase.promoting
    d = decide(d.rollout, Observation(now=60), ROLLOUT)
    assert d.rollout.phase is Phase.promoted and d.traffic.stable == "green" and d.traffic.green_bp == 10_000
    assert not decide(d.rollout, Observation(now=100), ROLLOUT).changed
    released = decide(d.rollout, Observation(now=120), ROLLOUT)
    assert released.rollout.old_stopped and released.effects[0].colour == "blue"


def test_start_fails_when_the_canary_never_gets_ready() -> None:
    d = decide(started(), Observation(now=301, canary_ready=False, canary_reason="503 loading"), ROLLOUT)
    assert d.rollout.phase is Phase.failed and "not ready after 300 s: 503 loading" in d.rollout.reason


def test_start_fails_at_once_when_the_runtime_cannot_start_the_canary() -> None:
    error = "docker could not start bluegreen-green: could not select device driver with capabilities: [[gpu]]"
    d = decide(started(), Observation(now=2, canary_ready=False, canary_reason="loading", start_error=error), ROLLOUT)
    assert d.rollout.phase is Phase.failed and d.traffic is None
    assert d.rollout.reason == f"could not start green: {error}" and d.event.kind == "rollout_failed"


def test_failed_warmup_fails_the_rollout_before_any_user_sees_green() -> None:
    warming = dataclasses.replace(started(), phase=Phase.warming)
    d = decide(warming, Observation(now=5, warmup_error="golden question 2/3: answered 500"), ROLLOUT)
    assert d.rollout.phase is Phase.failed and d.traffic is None


def test_failed_checks_in_a_row_roll_back() -> None:
    r = at_step(1)
    d = decide(r, Observation(now=110, verdict=FAIL), ROLLOUT)
    assert d.rollout.phase is Phase.progressing and d.rollout.failures == 1 and "check failed (1/2)" in d.event.message
    d = decide(d.rollout, Observation(now=120, verdict=FAIL), ROLLOUT)
    assert d.rollout.phase is Phase.rolling_back and d.traffic.green_bp == 0 and d.traffic.stable == "blue"
    assert "2 failed checks in a row" in d.event.message and "12.0 %" in d.event.message
    done = decide(d.rollout, Observation(now=121), ROLLOUT)
    assert done.rollout.phase is Phase.rolled_back and done.effects[0].kind == "rollback"


def test_a_pass_resets_the_failure_count() -> None:
    r = decide(at_step(0), Observation(now=110, verdict=FAIL), ROLLOUT).rollout
    r = decide(r, Observation(now=120, verdict=PASS), ROLLOUT).rollout
    assert r.failures == 0 and r.step == 1


def test_inconclusive_holds_the_step_forever() -> None:
    r = at_step(1)
    for tick in range(1, 50):
        d = decide(r, Observation(now=100 + tick * 10, verdict=HOLD), ROLLOUT)
        assert d.rollout.phase is Phase.progressing and d.rollout.step == 1 and d.traffic is None
        r = d.rollout


@pytest.mark.parametrize("observation", [
    Observation(now=101, canary_ready=False, canary_reason="probe failed"),
    Observation(now=101, hard_breach="green error rate 80.0 % ≥ hard limit 50.0 % over 10 requests"),
])
def test_hard_breaches_roll_back_without_waiting_out_the_step(observation: Observation) -> None:
    d = decide(at_step(1), observation, ROLLOUT)
    assert d.rollout.phase is Phase.rolling_back and d.traffic.green_bp == 0


def test_a_failing_provider_holds_then_rolls_back_after_the_deadline() -> None:
    r = at_step(1)
    d = decide(r, Observation(now=110, provider_error="prometheus did not answer"), ROLLOUT)
    assert d.rollout.phase is Phase.progressing and d.rollout.provider_failing_since == 100
    d = decide(d.rollout, Observation(now=100 + ROLLOUT.provider_error_deadline_s, provider_error="still down"), ROLLOUT)
    assert d.rollout.phase is Phase.rolling_back and "metrics unavailable for 180 s" in d.event.message


def test_confirm_gate_holds_promotion() -> None:
    gated = ROLLOUT.model_copy(update={"confirm_promotion": True})
    promoting = dataclasses.replace(at_step(2), phase=Phase.promoting)
    assert not decide(promoting, Observation(now=200), gated).changed
    assert decide(promoting, Observation(now=200, confirmed=True), gated).rollout.phase is Phase.promoted
    confirmed = command(promoting, "confirm", 201, "admin").rollout
    assert decide(confirmed, Observation(now=202), gated).rollout.phase is Phase.promoted


def test_operator_commands() -> None:
    r = at_step(1)
    paused = command(r, "pause", 105, "admin").rollout
    assert paused.phase is Phase.paused and not decide(paused, Observation(now=999, verdict=FAIL), ROLLOUT).changed
    resumed = command(paused, "resume", 200, "admin").rollout
    assert resumed.phase is Phase.progressing and resumed.step_since == 200
    promoting = command(paused, "promote", 201, "admin")
    assert promoting.rollout.phase is Phase.promoting and promoting.event.actor == "admin"
    back = command(r, "rollback", 202, "admin")
    assert back.rollout.phase is Phase.rolling_back and back.traffic.green_bp == 0
    with pytest.raises(CommandRefused, match="already progressing"):
        new_rollout(r, "blue", [5, 100], 10, 203, "admin")
    with pytest.raises(CommandRefused, match="only a paused rollout"):
        command(r, "resume", 204, "admin")
    with pytest.raises(CommandRefused, match="nothing to roll back"):
        command(dataclasses.replace(r, phase=Phase.rolled_back), "rollback", 205, "admin")
    with pytest.raises(CommandRefused, match="no rollout"):
        command(None, "pause", 206, "admin")


def test_rollback_after_promotion_restores_the_old_colour_within_the_window() -> None:
    promoted = dataclasses.replace(at_step(2), phase=Phase.promoted, old_stop_at=500)
    d = command(promoted, "rollback", 300, "admin")
    assert d.traffic.stable == "blue" and d.traffic.green_bp == 0
    with pytest.raises(CommandRefused, match="window is over"):
        command(dataclasses.replace(promoted, old_stopped=True), "rollback", 600, "admin")


def test_a_second_migration_rolls_out_blue_from_green() -> None:
    r = new_rollout(None, "green", [10, 100], 5, 0, "admin")
    assert r.rollout.canary == "blue" and r.traffic.green_bp == 10_000
    assert green_bp_for("blue", 1000) == 9000


@pytest.mark.parametrize("steps", [[], [0, 50], [50, 25], [5, 5], [5, 101], [12.345]])
def test_bad_steps_are_refused(steps: list[float]) -> None:
    with pytest.raises(ValueError):
        RolloutOptions(steps=steps)


def test_rollout_record_round_trips() -> None:
    r = command(at_step(1), "pause", 105, "admin").rollout
    from router.rollout import Rollout

    assert Rollout.from_dict(r.as_dict()) == r
