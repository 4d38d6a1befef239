"""The rollout controller: every tick, read the world, decide with the pure state machine, act.

Each decision is committed to the state store (rollout record, weights, event, one transaction)
before traffic follows it, so a restarted router resumes the same step. A lease in the state file
makes sure only one controller drives a rollout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from router.background import Periodic
from router.dataplanes.nginx import failure_key
from router.errors import NginxError, ProviderError, RolloutBlocked, StateUnavailable
from router.events import Event, EventDraft
from router.metrics import RouterMetrics
from router.proxy.mirror import Mirror
from router.quality.live import LiveChecks, answer_findings
from router.quality.shadow import shadow_verdict
from router.quality.verdict import Outcome as QualityOutcome
from router.quality.verdict import Sides
from router.quality.verdict import Verdict as QualityVerdict
from router.rollout.judge import Outcome, Verdict, hard_breach, judge
from router.rollout.machine import (
    FINISHED,
    Decision,
    Notify,
    Observation,
    Phase,
    Rollout,
    RolloutOptions,
    StopColour,
    command,
    decide,
    new_rollout,
)
from router.rollout.providers import MetricsProvider
from router.rollout.warmup import warm_up
from router.rollout.webhooks import Webhooks
from router.runtimes.managed import ManagedRuntime
from router.state import StateStore
from router.traffic import Traffic
from router.weights import Colour

log = logging.getLogger("bluegreen.controller")
BACKWARD = frozenset({Phase.rolling_back, Phase.rolled_back, Phase.failed})  # never held back by the data plane

NO_MIRROR = ("the nginx data plane does not mirror requests; judge the canary's answers before the cutover "
             "with `bluegreen compare --blue URL --green URL`")
LEASE = "rollout-controller"
LEASE_TTL_S = 6.0  # another router may take over a rollout this long after its controller stops


def _as_rollout_verdict(verdict: QualityVerdict) -> Verdict:
    """The answer checks' verdict in the rollout's terms: a regression fails the phase."""
    outcome = {QualityOutcome.passed: Outcome.passed, QualityOutcome.regressed: Outcome.failed,
               QualityOutcome.inconclusive: Outcome.inconclusive}[verdict.outcome]
    reasons = verdict.reasons or tuple(f.reason for f in verdict.findings)
    return Verdict(outcome, reasons)


class Controller(Periodic):
    name = "rollout-controller"

    def __init__(self, options: RolloutOptions, store: StateStore, traffic: Traffic, provider: MetricsProvider,
                 hooks: Webhooks, urls: dict[Colour, str], window_s: float, rollout: Rollout | None,
                 metrics: RouterMetrics | None = None,
                 apply_weights: Callable[[int, Path | None], Awaitable[None]] | None = None,
                 runtime: ManagedRuntime | None = None, mirror: Mirror | None = None,
                 live_checks: LiveChecks | None = None,
                 check_weights: Callable[[int, Colour], Awaitable[Path]] | None = None) -> None:
        super().__init__()
        self.mirror = mirror  # None: this data plane cannot mirror, and the shadow phase is skipped (said so)
        self.live_checks = live_checks  # sampled live answers of both colours, weighed with each step
        self.options, self.store, self.traffic, self.provider, self.hooks = options, store, traffic, provider, hooks
        self.interval_s = options.tick_s
        self.urls, self.window_s = urls, window_s
        self.rollout = rollout
        self.metrics = metrics
        self.apply_weights = apply_weights  # the nginx data plane follows every committed weight
        self.check_weights = check_weights  # ... and validates a step's before it is committed
        self._refused: str | None = None  # the data plane's last refusal of a step, recorded once
        self.runtime = runtime  # starts the canary, and stops the old colour after a promotion
        self._effects: set[asyncio.Task[None]] = set()
        self._publish_phase()
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        self._lock = asyncio.Lock()  # decisions commit one at a time
        self._lease_renew_at = 0.0

    # -- lifecycle ------------------------------------------------------------------------------

    async def stop(self) -> None:
        await super().stop()
        await self.hooks.aclose()
        await self.provider.aclose()

    async def step(self) -> None:
        try:
            await self.tick()
        except StateUnavailable as exc:
            log.error("controller could not use the state file: %s", exc)

    @property
    def active(self) -> bool:
        r = self.rollout
        return r is not None and r.phase not in FINISHED and r.phase is not Phase.paused

    # -- one tick ---------------------------------------------------------------------------

    async def tick(self) -> None:
        rollout = self.rollout
        if rollout is None or rollout.phase in (Phase.idle, Phase.rolled_back, Phase.failed, Phase.paused):
            return
        if rollout.phase is Phase.promoted and (rollout.old_stopped or rollout.old_stop_at is None):
            return
        if not await self._hold_lease():
            return
        seen = await self.observe(rollout)
        async with self._lock:
            if self.rollout is not rollout:  # an operator changed it while we were looking
                return
            decision = decide(rollout, seen, self.options)
            if decision.changed:
                checked, candidate = await self._checked(decision)
                if not checked:
                    return  # the move waits; the next tick decides (and checks) again
                await self.commit(decision, candidate)
        self._carry_out(decision)

    async def _checked(self, decision: Decision) -> tuple[bool, Path | None]:
        """Whether the data plane takes the weights a step moves forward to, and the config it tested.
        A rollback is never held back: it is committed, and the data plane retries until it takes it."""
        if decision.traffic is None or self.check_weights is None or decision.rollout.phase in BACKWARD:
            return True, None
        try:
            candidate = await self.check_weights(decision.traffic.green_bp, Colour(decision.traffic.stable))
        except NginxError as exc:
            if failure_key(str(exc)) != self._refused:
                self._refused = failure_key(str(exc))
                assert decision.event is not None
                message = f"held: the data plane refused the weights of the next move ({decision.event.message}): {exc}"
                await asyncio.to_thread(self.store.record, EventDraft("controller", "step_held", message))
                log.error("rollout %s %s", decision.rollout.id, message)
            return False, None
        self._refused = None
        return True, candidate

    async def _hold_lease(self) -> bool:
        """Renew the lease when a third of it is used up, so ticks do not write the state file each time."""
        now = time.monotonic()
        if now < self._lease_renew_at:
            return True
        held = await asyncio.to_thread(self.store.hold_lease, LEASE, self.owner, LEASE_TTL_S)
        self._lease_renew_at = now + LEASE_TTL_S / 3 if held else 0.0
        return held

    async def observe(self, rollout: Rollout) -> Observation:
        now = time.time()
        canary = Colour(rollout.canary)
        health = self.traffic.health[canary]
        seen = Observation(now=now, canary_ready=health.ready, canary_reason=health.reason,
                           start_error=self.runtime.start_errors.get(canary) if self.runtime is not None else None,
                           shadow_unavailable=None if self.mirror is not None else NO_MIRROR)
        if rollout.phase is Phase.warming:
            return dataclasses.replace(seen, warmup_error=await warm_up(self.urls[canary], self.options.warmup))
        if rollout.phase is Phase.promoting and self.options.confirm_promotion and self.hooks.has("confirm-promotion"):
            refusal = await self.hooks.gate("confirm-promotion", {"rollout": rollout.id, "canary": rollout.canary})
            return dataclasses.replace(seen, confirmed=refusal is None)
        if rollout.phase is Phase.shadowing and self.mirror is not None:
            return dataclasses.replace(seen, shadow_verdict=_as_rollout_verdict(
                shadow_verdict(self.mirror.tally, self.options.shadow.min_pairs, overdue=self.mirror.overdue())))
        if rollout.phase is not Phase.progressing:
            return seen
        if health.ejection is not None:  # the data plane already took it out of traffic: a hard signal
            return dataclasses.replace(seen, hard_breach=health.ejection)
        step_span = max(0.001, min(now - rollout.evidence_since, self.window_s))
        try:
            recent = await self.provider.evidence(canary, min(step_span, self.options.judge.hard_window_s))
            seen = dataclasses.replace(seen, hard_breach=hard_breach(recent.green, self.options.judge, canary.value))
            if now - rollout.step_since >= rollout.interval_s:
                verdict = judge(await self.provider.evidence(canary, step_span), self.options.judge)
                seen = dataclasses.replace(seen, verdict=self._with_answer_checks(verdict, canary, rollout.evidence_since))
        except ProviderError as exc:
            return dataclasses.replace(seen, provider_error=str(exc))
        return seen

    def _with_answer_checks(self, verdict: Verdict, canary: Colour, since: float) -> Verdict:
        """A step also fails when the canary's live answers are worse than the stable colour's, and holds
        while too few were checked (or they are worse only within sampling noise)."""
        if self.live_checks is None or not self.live_checks.options.enabled or verdict.outcome is Outcome.inconclusive:
            return verdict
        found = answer_findings(self.live_checks.rates(canary, since), self.live_checks.baseline(canary.other, since),
                                self.options.answer_checks.min_answers, sides=Sides(canary.value, canary.other.value))
        if found.failed:  # the causes only: the HTTP judge's passing figures are no news here
            http = verdict.reasons if verdict.outcome is Outcome.failed else ()
            return dataclasses.replace(verdict, outcome=Outcome.failed, reasons=(*found.failed, *http))
        if found.undecided and verdict.outcome is Outcome.passed:
            return dataclasses.replace(verdict, outcome=Outcome.inconclusive, reasons=(*found.undecided,))
        return verdict

    # -- acting -----------------------------------------------------------------------------

    async def commit(self, decision: Decision, candidate: Path | None = None) -> Event:
        """Write the rollout, its weights and its event in one transaction; then route by them
        (`candidate`: the data plane's config for them, already tested)."""
        assert decision.event is not None
        values: dict[str, object] = {"rollout": decision.rollout.as_dict()}
        if decision.traffic is not None:
            values.update(green_bp=decision.traffic.green_bp, stable=decision.traffic.stable)
        event = await asyncio.to_thread(self.store.commit, values, decision.event)
        self.rollout = decision.rollout
        self._publish_phase()
        if decision.traffic is not None:
            self.traffic.apply(decision.traffic.green_bp, Colour(decision.traffic.stable))
            if self.apply_weights is not None:
                await self.apply_weights(decision.traffic.green_bp, candidate)
        log.info("rollout %s: %s", decision.rollout.id, decision.event.message)
        return event

    def _publish_phase(self) -> None:
        if self.metrics is not None:
            current = self.rollout.phase if self.rollout is not None else Phase.idle
            for phase in Phase:
                self.metrics.rollout_phase.labels(phase.value).set(1 if phase is current else 0)
        phase = self.rollout.phase if self.rollout is not None else Phase.idle
        if self.mirror is not None:
            canary = Colour(self.rollout.canary) if self.rollout is not None else None
            self.mirror.set_active(phase is Phase.shadowing, canary)
        if self.live_checks is not None:
            self.live_checks.active = phase is Phase.progressing
            if self.rollout is not None:
                self.live_checks.begin_step(self.rollout.evidence_since)

    def _carry_out(self, decision: Decision) -> None:
        for effect in decision.effects:
            if isinstance(effect, Notify):
                self.hooks.notify(effect.kind, effect.payload)
            elif isinstance(effect, StopColour):
                if self.runtime is None:
                    log.info("%s may be stopped now (no runtime manages it here)", effect.colour)
                else:
                    self._in_background(self.runtime.stop_colour(Colour(effect.colour)))

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._effects.add(task)
        task.add_done_callback(self._effects.discard)

    # -- operator commands ------------------------------------------------------------------

    async def begin(self, steps: list[float] | None, interval_s: float | None, actor: str) -> Event:
        """Start a rollout of the colour that is not stable; a refusing pre-rollout hook blocks it."""
        async with self._lock:
            now = time.time()
            decision = new_rollout(self.rollout, self.traffic.stable.value, steps or self.options.steps,
                                   interval_s or self.options.interval_s, now, actor, os.urandom(6).hex())
            refusal = await self.hooks.gate("pre-rollout", {"rollout": decision.rollout.id,
                                                            "canary": decision.rollout.canary})
            if refusal:
                raise RolloutBlocked(f"the pre-rollout webhook refused: {refusal}")
            event = await self.commit(decision)
        if self.runtime is not None:  # `starting` then waits for the probes to see it ready
            await self.runtime.start_colour(Colour(decision.rollout.canary))
        return event

    async def command(self, name: str, actor: str) -> Event:
        async with self._lock:
            decision = command(self.rollout, name, time.time(), actor)
            event = await self.commit(decision)
        self._carry_out(decision)
        return event
