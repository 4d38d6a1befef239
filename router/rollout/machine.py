"""The rollout state machine: pure functions from (rollout, what the world looks like) to the next
rollout, the event that explains the change, and the effects to carry out.

idle → starting → warming → shadowing → progressing → promoting → promoted, with paused,
rolling_back → rolled_back and failed. In `shadowing` users still get only the stable colour's
answers while live requests are mirrored to the canary and its answers judged. The colour being rolled out is the *canary* (the one that is not stable);
its share walks the steps, and each step is judged before the next.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.errors import CommandRefused
from router.events import EventDraft
from router.quality.live import LiveCheckOptions
from router.rollout.judge import JudgeOptions, Outcome, Verdict
from router.weights import FULL_WEIGHT_BP, Colour, bp_to_percent, percent_to_bp


class Phase(StrEnum):
    idle = "idle"
    starting = "starting"
    warming = "warming"
    shadowing = "shadowing"
    progressing = "progressing"
    promoting = "promoting"
    promoted = "promoted"
    paused = "paused"
    rolling_back = "rolling_back"
    rolled_back = "rolled_back"
    failed = "failed"


FINISHED = frozenset({Phase.idle, Phase.promoted, Phase.rolled_back, Phase.failed})
PAUSABLE = frozenset({Phase.starting, Phase.warming, Phase.shadowing, Phase.progressing, Phase.promoting})


DEFAULT_GOLDEN_QUESTIONS = [
    "Что такое договор?",
    "Какой срок исковой давности установлен Гражданским кодексом?",
    "Можно ли уволить работника во время отпуска?",
]


class WarmupOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[str] = Field(default_factory=lambda: list(DEFAULT_GOLDEN_QUESTIONS),
                                 description="golden legal questions sent to the canary only, before any user is")
    timeout_s: float = Field(120.0, gt=0, description="each answer must come within this")
    max_tokens: int = Field(32, ge=1, le=4096)


class ShadowOptions(BaseModel):
    """The shadow phase: live requests mirrored to the canary, its answers judged against the stable colour's."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="mirror live traffic to the canary before any user reaches it")
    percent: float = Field(100.0, gt=0, le=100, description="share of the stable colour's requests that are mirrored")
    min_pairs: int = Field(20, ge=1, description="mirrored answers needed for a verdict; fewer is inconclusive")
    max_in_flight: int = Field(4, ge=1, description="mirrors at once; more are skipped (and counted), never queued")
    max_per_s: float = Field(50.0, gt=0, description="mirrors started per second at most: a verdict needs pairs, not "
                                                     "all the traffic, so a busy router's cost stays bounded")
    max_duration_s: float = Field(600.0, gt=0, description="still inconclusive after this: the rollout fails")


class RolloutOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], description="canary percent per step")
    interval_s: float = Field(30.0, gt=0, description="how long each step is held and then judged")
    tick_s: float = Field(0.25, gt=0, le=1.0, description="time between two controller ticks")
    start_timeout_s: float = Field(300.0, gt=0, description="the canary must be ready within this")
    failures_to_rollback: int = Field(2, ge=1, description="failed checks in a row that roll back")
    provider_error_deadline_s: float = Field(
        180.0, gt=0, description="metrics unavailable this long → roll back (an unjudged canary must not keep serving)")
    max_inconclusive_s: float = Field(
        0.0, ge=0, description="a step inconclusive (too little traffic) this long → roll back; 0 holds it for as long "
                               "as it takes (the canary keeps its small share, nothing is promoted)")
    confirm_promotion: bool = Field(False, description="hold before promotion until an operator or hook confirms")
    keep_old_s: float = Field(300.0, ge=0, description="after promotion the old colour is kept this long (fast rollback)")
    warmup: WarmupOptions = WarmupOptions()
    shadow: ShadowOptions = ShadowOptions()
    answer_checks: LiveCheckOptions = LiveCheckOptions()
    judge: JudgeOptions = JudgeOptions()

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[float]) -> list[float]:
        return validate_steps(steps)


def validate_steps(steps: list[float]) -> list[float]:
    if not steps:
        raise ValueError("give at least one step, e.g. [5, 25, 50, 100]")
    points = [percent_to_bp(s) for s in steps]
    if any(p <= 0 for p in points) or any(b <= a for a, b in zip(points, points[1:], strict=False)):
        raise ValueError("steps must be above 0 and strictly increasing, e.g. [5, 25, 50, 100]")
    return steps


# -- effects the controller carries out -----------------------------------------------------


@dataclass(frozen=True)
class Notify:
    """POST a webhook of this kind (step, promotion, rollback)."""

    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class StopColour:
    """The runtime may stop this colour now (the fast-rollback window is over)."""

    colour: str


@dataclass(frozen=True)
class Traffic:
    """The weights and stable colour a rollout state implies; committed with it."""

    green_bp: int
    stable: str


# -- the record -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rollout:
    id: str
    phase: Phase
    canary: str
    steps: tuple[int, ...]  # canary basis points per step
    interval_s: float
    started_at: float
    started_by: str
    phase_since: float
    step: int = -1
    step_since: float = 0.0
    failures: int = 0
    paused_from: Phase | None = None
    confirmed: bool = False
    provider_failing_since: float | None = None
    inconclusive_since: float | None = None  # the step's verdicts have been inconclusive since then
    last_verdict: dict[str, Any] | None = None
    reason: str = ""
    old_stop_at: float | None = None
    old_stopped: bool = False

    @property
    def origin(self) -> str:
        """The colour traffic moves away from (stable before the rollout, and again after a rollback)."""
        return Colour(self.canary).other.value

    @property
    def evidence_since(self) -> float:
        """Where the step's evidence (requests, within the judge's window, and live answers) is counted
        from: a step held without a verdict keeps gathering it (a verdict, a failed check or a resume starts
        over), so a quiet step gets there in the end instead of starting from nothing at every hold."""
        return self.inconclusive_since if self.inconclusive_since is not None else self.step_since

    @property
    def canary_bp(self) -> int:
        return self.steps[self.step] if self.step >= 0 else 0

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["phase"] = self.phase.value
        data["paused_from"] = self.paused_from.value if self.paused_from else None
        data["steps"] = list(self.steps)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["phase"] = Phase(values["phase"])
        values["paused_from"] = Phase(values["paused_from"]) if values.get("paused_from") else None
        values["steps"] = tuple(values["steps"])
        return cls(**values)

    def to(self, phase: Phase, now: float, reason: str, **changes: Any) -> Rollout:
        return dataclasses.replace(self, phase=phase, phase_since=now, reason=reason, **changes)


def green_bp_for(canary: str, canary_bp: int) -> int:
    return canary_bp if canary == Colour.green.value else FULL_WEIGHT_BP - canary_bp


@dataclass(frozen=True)
class Observation:
    """The world at one tick, as the controller read it."""

    now: float
    canary_ready: bool = True
    canary_reason: str = "ready"
    start_error: str | None = None  # the runtime could not start the canary (no engine, no image, no GPU)
    warmup_error: str | None = None  # None: passed (or not run in this phase)
    verdict: Verdict | None = None  # the step's verdict, once its interval is over
    hard_breach: str | None = None  # a reason to roll back at once
    provider_error: str | None = None
    confirmed: bool = False  # a confirm-promotion hook said yes
    shadow_verdict: Verdict | None = None  # the mirrored answers' verdict, in `shadowing`
    shadow_unavailable: str | None = None  # why this data plane cannot mirror (the phase is then skipped)


@dataclass(frozen=True)
class Decision:
    rollout: Rollout
    event: EventDraft | None = None
    traffic: Traffic | None = None  # weights to commit with the rollout
    effects: tuple[Notify | StopColour, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return self.event is not None


def _event(kind: str, rollout: Rollout, message: str, before: Rollout | None = None) -> EventDraft:
    return EventDraft("controller", kind, message,
                      before={"phase": before.phase.value, "step": before.step} if before else None,
                      after={"phase": rollout.phase.value, "step": rollout.step, "canary_percent": rollout.canary_bp / 100})


def _payload(rollout: Rollout, message: str) -> dict[str, Any]:
    return {"rollout": rollout.id, "phase": rollout.phase.value, "canary": rollout.canary, "step": rollout.step,
            "canary_percent": rollout.canary_bp / 100, "message": message}


def _at_step(rollout: Rollout) -> Traffic:
    return Traffic(green_bp_for(rollout.canary, rollout.canary_bp), rollout.origin)


def roll_back(rollout: Rollout, now: float, reason: str, actor: str = "controller") -> Decision:
    """Send every session back to the stable colour (after a promotion: back to the old one)."""
    after = rollout.to(Phase.rolling_back, now, reason, step=-1, paused_from=None)
    message = f"rolling back to {rollout.origin}: {reason}"
    event = dataclasses.replace(_event("rollback_started", after, message, rollout), actor=actor)
    return Decision(after, event, Traffic(green_bp_for(rollout.canary, 0), rollout.origin))


# -- the tick decision ----------------------------------------------------------------------


def decide(rollout: Rollout, seen: Observation, options: RolloutOptions) -> Decision:
    """The next state given what the controller just observed; no change gives an empty decision."""
    now = seen.now
    phase = rollout.phase
    if phase is Phase.starting:
        if seen.start_error:
            failed = rollout.to(Phase.failed, now, f"could not start {rollout.canary}: {seen.start_error}")
            return Decision(failed, _event("rollout_failed", failed, failed.reason, rollout))
        if seen.canary_ready:
            warming = rollout.to(Phase.warming, now, f"{rollout.canary} is ready")
            return Decision(warming, _event("phase_changed", warming, f"{rollout.canary} is ready; warming up", rollout))
        if now - rollout.phase_since > options.start_timeout_s:
            failed = rollout.to(Phase.failed, now, f"{rollout.canary} not ready after {options.start_timeout_s:g} s: "
                                                   f"{seen.canary_reason}")
            return Decision(failed, _event("rollout_failed", failed, failed.reason, rollout))
        return Decision(rollout)
    if phase is Phase.warming:
        if seen.warmup_error:
            failed = rollout.to(Phase.failed, now, f"warm-up failed: {seen.warmup_error}")
            return Decision(failed, _event("rollout_failed", failed, failed.reason, rollout))
        if options.shadow.enabled and seen.shadow_unavailable is None:
            shadowing = rollout.to(Phase.shadowing, now, "warm-up passed")
            message = (f"warm-up passed; shadowing: {options.shadow.percent:g} % of live requests mirrored to "
                       f"{rollout.canary}, users keep getting {rollout.origin}'s answers")
            return Decision(shadowing, _event("phase_changed", shadowing, message, rollout))
        skipped = f"; shadow phase skipped: {seen.shadow_unavailable}" if options.shadow.enabled else ""
        return _first_step(rollout, now, "warm-up passed" + skipped)
    if phase is Phase.shadowing:
        return _shadow(rollout, seen, options)
    if phase is Phase.progressing:
        return _progress(rollout, seen, options)
    if phase is Phase.promoting:
        if options.confirm_promotion and not (rollout.confirmed or seen.confirmed):
            return Decision(rollout)
        promoted = rollout.to(Phase.promoted, now, "promoted", old_stop_at=now + options.keep_old_s)
        message = (f"promoted: {rollout.canary} is the stable colour at 100 %; {rollout.origin} is kept "
                   f"{options.keep_old_s:g} s for a fast rollback")
        return Decision(promoted, _event("promoted", promoted, message, rollout),
                        Traffic(green_bp_for(rollout.canary, FULL_WEIGHT_BP), rollout.canary),
                        (Notify("promotion", _payload(promoted, message)),))
    if phase is Phase.promoted:
        if rollout.old_stop_at is not None and not rollout.old_stopped and now >= rollout.old_stop_at:
            done = dataclasses.replace(rollout, old_stopped=True)
            old = Colour(rollout.canary).other.value
            return Decision(done, _event("old_colour_released", done, f"fast-rollback window over; {old} may stop",
                                         rollout), effects=(StopColour(old),))
        return Decision(rollout)
    if phase is Phase.rolling_back:
        done = rollout.to(Phase.rolled_back, now, rollout.reason)
        message = f"rolled back: {rollout.reason}"
        return Decision(done, _event("rolled_back", done, message, rollout),
                        effects=(Notify("rollback", _payload(done, message)),))
    return Decision(rollout)  # paused and finished phases hold


def _first_step(rollout: Rollout, now: float, why: str) -> Decision:
    first = rollout.to(Phase.progressing, now, why, step=0, step_since=now)
    message = f"{why}; step 1/{len(first.steps)}: {first.canary} at {first.canary_bp / 100:g} %"
    return Decision(first, _event("step_started", first, message, rollout), _at_step(first),
                    (Notify("step", _payload(first, message)),))


def _shadow(rollout: Rollout, seen: Observation, options: RolloutOptions) -> Decision:
    """Judge the mirrored answers: a pass starts the first step, a failure rejects the canary before any
    user saw it, and no verdict holds until the deadline."""
    now = seen.now
    if not seen.canary_ready:
        failed = rollout.to(Phase.failed, now, f"{rollout.canary} is not ready while shadowing: {seen.canary_reason}")
        return Decision(failed, _event("rollout_failed", failed, failed.reason, rollout))
    verdict = seen.shadow_verdict
    if verdict is None:
        return Decision(rollout)
    reasons = "; ".join(verdict.reasons)
    if verdict.outcome is Outcome.failed:
        failed = rollout.to(Phase.failed, now, f"shadow check failed: {reasons}", last_verdict=verdict.as_dict())
        return Decision(failed, _event("rollout_failed", failed, failed.reason, rollout))
    if verdict.outcome is Outcome.passed:
        return _first_step(dataclasses.replace(rollout, last_verdict=verdict.as_dict()), now, f"shadow passed: {reasons}")
    if now - rollout.phase_since > options.shadow.max_duration_s:
        failed = rollout.to(Phase.failed, now, f"shadowing inconclusive after {options.shadow.max_duration_s:g} s: "
                                               f"{reasons}", last_verdict=verdict.as_dict())
        return Decision(failed, _event("rollout_failed", failed, failed.reason, rollout))
    return Decision(rollout)  # the figures so far are in /admin/status


def _progress(rollout: Rollout, seen: Observation, options: RolloutOptions) -> Decision:
    now = seen.now
    if not seen.canary_ready:
        return roll_back(rollout, now, f"{rollout.canary} is not ready: {seen.canary_reason}")
    if seen.hard_breach:
        return roll_back(rollout, now, seen.hard_breach)
    if now - rollout.step_since < rollout.interval_s:
        return Decision(rollout)
    step_name = f"step {rollout.step + 1}/{len(rollout.steps)} ({rollout.canary_bp / 100:g} %)"
    if seen.provider_error or seen.verdict is None:
        failing_since = rollout.provider_failing_since if rollout.provider_failing_since is not None else rollout.step_since
        error = seen.provider_error or "no verdict"
        if now - failing_since >= options.provider_error_deadline_s:
            return roll_back(rollout, now, f"metrics unavailable for {now - failing_since:.0f} s: {error}")
        held = dataclasses.replace(rollout, step_since=now, provider_failing_since=failing_since,
                                   last_verdict={"outcome": "inconclusive", "reasons": [f"metrics provider: {error}"]})
        return Decision(held, _event("step_held", held, f"{step_name} held: metrics provider: {error}", rollout))
    verdict = seen.verdict
    judged = dataclasses.replace(rollout, provider_failing_since=None, inconclusive_since=None,
                                 last_verdict=verdict.as_dict())
    reasons = "; ".join(verdict.reasons)
    if verdict.outcome is Outcome.inconclusive:
        since = rollout.inconclusive_since if rollout.inconclusive_since is not None else rollout.step_since
        if options.max_inconclusive_s and now - since >= options.max_inconclusive_s:
            return roll_back(judged, now, f"no verdict for {now - since:.0f} s at {step_name} "
                                          f"(rollout.max_inconclusive_s {options.max_inconclusive_s:g}): {reasons}")
        held = dataclasses.replace(judged, step_since=now, inconclusive_since=since)
        return Decision(held, _event("step_held", held, f"{step_name} held (inconclusive): {reasons}", rollout))
    if verdict.outcome is Outcome.failed:
        failures = rollout.failures + 1
        if failures >= options.failures_to_rollback:
            return roll_back(dataclasses.replace(judged, failures=failures), now,
                             f"{failures} failed checks in a row at {step_name}: {reasons}")
        held = dataclasses.replace(judged, step_since=now, failures=failures)
        message = f"{step_name} check failed ({failures}/{options.failures_to_rollback}): {reasons}"
        return Decision(held, _event("check_failed", held, message, rollout))
    if rollout.step + 1 >= len(rollout.steps):
        promoting = judged.to(Phase.promoting, now, "all steps passed", failures=0)
        waiting = " (waiting for confirmation)" if options.confirm_promotion and not rollout.confirmed else ""
        return Decision(promoting, _event("phase_changed", promoting, f"{step_name} passed: {reasons}; promoting{waiting}",
                                          rollout))
    advanced = dataclasses.replace(judged, step=rollout.step + 1, step_since=now, failures=0)
    message = f"{step_name} passed: {reasons}; {advanced.canary} to {advanced.canary_bp / 100:g} %"
    return Decision(advanced, _event("step_started", advanced, message, rollout), _at_step(advanced),
                    (Notify("step", _payload(advanced, message)),))


# -- operator commands ----------------------------------------------------------------------


def new_rollout(current: Rollout | None, stable: str, steps: list[float], interval_s: float, now: float,
                actor: str, rollout_id: str) -> Decision:
    """A rollout of the colour that is not `stable`; the caller names it (`rollout_id`) and gives the time."""
    if current is not None and current.phase not in FINISHED:
        raise CommandRefused(f"a rollout is already {current.phase.value}; pause, promote or roll it back first")
    validate_steps(steps)
    canary = Colour(stable).other.value
    rollout = Rollout(id=rollout_id, phase=Phase.starting, canary=canary,
                      steps=tuple(percent_to_bp(s) for s in steps), interval_s=interval_s, started_at=now,
                      started_by=actor, phase_since=now, reason="started")
    message = (f"rollout {rollout.id} started by {actor}: {canary} through "
               f"{', '.join(f'{s:g}' for s in steps)} %, {interval_s:g} s per step")
    return Decision(rollout, dataclasses.replace(_event("rollout_started", rollout, message), actor=actor),
                    Traffic(green_bp_for(canary, 0), stable))


def command(rollout: Rollout | None, name: str, now: float, actor: str) -> Decision:
    """pause | resume | promote | confirm | rollback, as an operator asked."""
    if rollout is None:
        raise CommandRefused("there is no rollout; start one (`bluegreen cutover`, POST /admin/rollout)")
    phase = rollout.phase
    if name == "pause":
        if phase not in PAUSABLE:
            raise CommandRefused(f"cannot pause a rollout that is {phase.value}")
        paused = rollout.to(Phase.paused, now, f"paused by {actor}", paused_from=phase)
        return _by(actor, Decision(paused, _event("paused", paused, f"paused by {actor} during {phase.value}", rollout)))
    if name == "resume":
        if phase is not Phase.paused or rollout.paused_from is None:
            raise CommandRefused(f"only a paused rollout can resume; this one is {phase.value}")
        resumed = rollout.to(rollout.paused_from, now, f"resumed by {actor}", paused_from=None, step_since=now,
                             inconclusive_since=None, provider_failing_since=None)
        # Weights set by hand during the pause give way to the step's again: the step is judged, and
        # its traffic counted, at the weight it names (its timer, and the deadlines for a step without
        # a verdict or without metrics, start over: a pause is not time the step went unjudged).
        where = (f"back at the step's {bp_to_percent(resumed.canary_bp):g} %" if resumed.step >= 0
                 else f"at 0 % while {resumed.phase.value}")
        message = f"resumed by {actor}; {rollout.canary} {where}"
        return _by(actor, Decision(resumed, _event("resumed", resumed, message, rollout),
                                   Traffic(green_bp_for(rollout.canary, resumed.canary_bp), rollout.origin)))
    if name in ("promote", "confirm"):
        promotable = {Phase.progressing, Phase.promoting} if name == "promote" else {Phase.promoting}
        current = rollout.paused_from if phase is Phase.paused else phase
        if current not in promotable:
            raise CommandRefused(f"cannot {name} a rollout that is {phase.value}")
        promoting = rollout.to(Phase.promoting, now, f"{name} by {actor}", confirmed=True, paused_from=None)
        verb = "promotion confirmed" if name == "confirm" else "promotion requested; remaining steps skipped"
        return _by(actor, Decision(promoting, _event("phase_changed", promoting, f"{verb} by {actor}", rollout)))
    if name == "rollback":
        if phase in (Phase.rolled_back, Phase.failed, Phase.idle, Phase.rolling_back):
            raise CommandRefused(f"nothing to roll back: the rollout is {phase.value}")
        if phase is Phase.promoted and rollout.old_stopped:
            raise CommandRefused("the fast-rollback window is over and the old colour was released; start a new rollout")
        return roll_back(rollout, now, f"requested by {actor}", actor=actor)
    raise CommandRefused(f"unknown command {name!r}; use pause, resume, promote, confirm or rollback")


def _by(actor: str, decision: Decision) -> Decision:
    assert decision.event is not None
    return dataclasses.replace(decision, event=dataclasses.replace(decision.event, actor=actor))
