"""The rollout state machine: every phase change and operator command, checked directly."""

from __future__ import annotations

import dataclasses

import pytest

from router.rollout.judge import Outcome, Verdict
from router.rollout.machine import (
    CommandRefused,
    Notify,
    Observation,
    Phase,
    RolloutOptions,
    command,
    decide,
    green_bp_for,
    new_rollout,
)

ROLLOUT = RolloutOptions(steps=[5, 50, 100], interval_s=10, failures_to_rollback=2, keep_old_s=60)
PASS = Verdict(Outcome.passed, ("fine",))
FAIL = Verdict(Outcome.failed, ("green error rate 12.0 % > 5.0 % over 143 requests",))
HOLD = Verdict(Outcome.inconclusive, ("only 3 green requests",))


def started(now: float = 0.0):
    return new_rollout(None, "blue", ROLLOUT.steps, ROLLOUT.interval_s, now, "admin", "r1").rollout


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
    r = decide(r, Observation(now=3), ROLLOUT).rollout
    assert r.phase is Phase.shadowing  # users still get only blue's answers
    assert not decide(r, Observation(now=4, shadow_verdict=HOLD), ROLLOUT).changed  # too few pairs: held
    d = decide(r, Observation(now=5, shadow_verdict=PASS), ROLLOUT)
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
    assert d.rollout.failures == 2  # the record says what the reason says
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


def test_inconclusive_past_its_limit_rolls_back_and_a_verdict_resets_the_clock() -> None:
    options = ROLLOUT.model_copy(update={"max_inconclusive_s": 35})
    r = at_step(1)  # the step began at 100
    for now in (110, 120, 130):
        r = decide(r, Observation(now=now, verdict=HOLD), options).rollout
    assert r.phase is Phase.progressing and r.inconclusive_since == 100
    assert r.step_since == 130 and r.evidence_since == 100  # live answers keep gathering across the holds
    failed_once = decide(r, Observation(now=140, verdict=FAIL), options).rollout  # a verdict: the clock starts again
    assert failed_once.inconclusive_since is None and failed_once.evidence_since == 140  # a verdict starts over
    r = decide(failed_once, Observation(now=150, verdict=HOLD), options).rollout
    assert r.phase is Phase.progressing and r.inconclusive_since == 140
    r = decide(r, Observation(now=160, verdict=HOLD), options).rollout
    d = decide(r, Observation(now=175, verdict=HOLD), options)
    assert d.rollout.phase is Phase.rolling_back and d.traffic.green_bp == 0
    assert d.rollout.reason.startswith("no verdict for 35 s at step 2/3 (50 %)") and "only 3 green" in d.rollout.reason


def test_a_pause_does_not_count_towards_the_deadlines_of_a_step_without_a_verdict() -> None:
    options = ROLLOUT.model_copy(update={"max_inconclusive_s": 35, "provider_error_deadline_s": 35})
    for held in (Observation(now=130, verdict=HOLD), Observation(now=130, provider_error="Prometheus: timed out")):
        r = decide(at_step(1), held, options).rollout
        paused = command(r, "pause", 200, "admin").rollout
        resumed = command(paused, "resume", 5000, "admin").rollout
        assert resumed.inconclusive_since is None and resumed.provider_failing_since is None
        d = decide(resumed, dataclasses.replace(held, now=5010), options)
        assert d.rollout.phase is Phase.progressing, d.rollout.reason  # held again, not rolled back for the pause


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
    resumed_decision = command(paused, "resume", 200, "admin")
    resumed = resumed_decision.rollout
    assert resumed.phase is Phase.progressing and resumed.step_since == 200
    # Whatever weights were set by hand while paused, the step's come back with the resume.
    assert resumed_decision.traffic is not None and resumed_decision.traffic.green_bp == r.steps[1]
    assert resumed_decision.traffic.stable == "blue" and f"back at the step's {r.steps[1] / 100:g} %" in \
        resumed_decision.event.message
    promoting = command(paused, "promote", 201, "admin")
    assert promoting.rollout.phase is Phase.promoting and promoting.event.actor == "admin"
    back = command(r, "rollback", 202, "admin")
    assert back.rollout.phase is Phase.rolling_back and back.traffic.green_bp == 0
    with pytest.raises(CommandRefused, match="already progressing"):
        new_rollout(r, "blue", [5, 100], 10, 203, "admin", "r2")
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
    r = new_rollout(None, "green", [10, 100], 5, 0, "admin", "r3")
    assert r.rollout.canary == "blue" and r.traffic.green_bp == 10_000
    assert green_bp_for("blue", 1000) == 9000


@pytest.mark.parametrize("steps", [[], [0, 50], [50, 25], [5, 5], [5, 101], [12.345]])
def test_bad_steps_are_refused(steps: list[float]) -> None:
    with pytest.raises(ValueError):
        RolloutOptions(steps=steps)


def test_rollout_record_round_trips() -> None:
    r = command(at_step(1), "pause", 105, "admin").rollout
    from router.rollout.machine import Rollout

    assert Rollout.from_dict(r.as_dict()) == r


def shadowing(now: float = 10.0):
    r = decide(decide(started(), Observation(now=1), ROLLOUT).rollout, Observation(now=now), ROLLOUT).rollout
    assert r.phase is Phase.shadowing
    return r


def test_a_canary_whose_mirrored_answers_regress_fails_before_any_user_sees_it() -> None:
    d = decide(shadowing(), Observation(now=20, shadow_verdict=FAIL), ROLLOUT)
    assert d.rollout.phase is Phase.failed and d.traffic is None  # the weights never moved
    assert "shadow check failed" in d.rollout.reason and "12.0 %" in d.rollout.reason


def test_shadowing_fails_when_the_canary_goes_unready_or_stays_inconclusive_past_the_deadline() -> None:
    r = shadowing()
    unready = decide(r, Observation(now=20, canary_ready=False, canary_reason="crashed"), ROLLOUT)
    assert unready.rollout.phase is Phase.failed and "crashed" in unready.rollout.reason
    deadline = ROLLOUT.shadow.max_duration_s
    assert not decide(r, Observation(now=10 + deadline, shadow_verdict=HOLD), ROLLOUT).changed
    late = decide(r, Observation(now=11 + deadline, shadow_verdict=HOLD), ROLLOUT)
    assert late.rollout.phase is Phase.failed and "inconclusive" in late.rollout.reason


def test_the_shadow_phase_is_skipped_out_loud_where_it_cannot_run_or_is_off() -> None:
    warming = decide(started(), Observation(now=1), ROLLOUT).rollout
    nginx = decide(warming, Observation(now=2, shadow_unavailable="the nginx data plane does not mirror"), ROLLOUT)
    assert nginx.rollout.phase is Phase.progressing and "shadow phase skipped: the nginx" in nginx.event.message
    off = ROLLOUT.model_copy(update={"shadow": ROLLOUT.shadow.model_copy(update={"enabled": False})})
    plain = decide(warming, Observation(now=2), off)
    assert plain.rollout.phase is Phase.progressing and "skipped" not in plain.event.message


def test_a_shadowing_rollout_can_be_paused_and_rolled_back() -> None:
    r = shadowing()
    paused = command(r, "pause", 20, "admin").rollout
    assert paused.phase is Phase.paused and paused.paused_from is Phase.shadowing
    resumed = command(paused, "resume", 21, "admin")
    assert resumed.rollout.phase is Phase.shadowing
    assert resumed.traffic is not None and resumed.traffic.green_bp == 0  # no user on green while shadowing
    assert resumed.event is not None and "green at 0 % while shadowing" in resumed.event.message
    assert command(r, "rollback", 22, "admin").rollout.phase is Phase.rolling_back
