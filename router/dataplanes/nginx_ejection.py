"""nginx's passive health check, read back from its access log.

nginx ejects the canary on its own (`max_fails` failed attempts within `fail_timeout`) and tells no
one. Its access log shows it: a request nginx chose the canary for (`colour`) whose first attempt
went to another colour was sent to the backup because nginx holds the canary down. One whose first
attempt reaches the canary again means nginx let it back in; so does `fail_timeout` passing with no
request skipping it (nginx tries the canary again then). The router mirrors this into the state,
event and metric the built-in plane's outlier detection uses, so the controller rolls back on it
and the console shows it. Pure bookkeeping with the clock passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from router.dataplanes.nginx_log import Attempt
from router.events import EventDraft
from router.metrics import RouterMetrics
from router.traffic import Traffic
from router.weights import Colour

log = logging.getLogger("bluegreen.nginx")


@dataclass(frozen=True)
class EjectionChange:
    colour: Colour
    ejected: bool
    reason: str


class NginxEjectionWatch:
    def __init__(self, fail_timeout_s: float) -> None:
        self.fail_timeout_s = fail_timeout_s
        self._skipped_at: dict[Colour, float] = {}  # colour nginx holds down -> when a request last skipped it

    @property
    def ejected(self) -> frozenset[Colour]:
        return frozenset(self._skipped_at)

    def observe(self, chosen: Colour | None, attempts: Sequence[Attempt], now: float) -> EjectionChange | None:
        """One access-log line: the change it shows in what nginx holds down, if any."""
        if chosen is None or not attempts:
            return None  # answered by nginx itself (a 429), or a colour the router does not know
        if attempts[0].colour is not chosen:
            was_ejected = chosen in self._skipped_at
            self._skipped_at[chosen] = now
            return None if was_ejected else EjectionChange(
                chosen, True, f"{chosen.value} ejected by nginx: {chosen.value}'s requests go straight to "
                              f"{attempts[0].colour.value} (its failures reached max_fails)")
        if self._skipped_at.pop(chosen, None) is not None:
            return EjectionChange(chosen, False, f"{chosen.value} readmitted by nginx: a request reached it again")
        return None

    def expire(self, now: float) -> list[EjectionChange]:
        """Colours no request has skipped for `fail_timeout_s`: nginx tries them again by now."""
        over = [colour for colour, at in self._skipped_at.items() if now - at > self.fail_timeout_s]
        for colour in over:
            del self._skipped_at[colour]
        return [EjectionChange(colour, False, f"{colour.value} readmitted: nginx's fail_timeout of "
                                              f"{self.fail_timeout_s:g} s is over") for colour in over]


class EjectionReporter:
    """Carries a change out as the built-in plane's outlier detection does: the colour's ejection in the
    traffic picture (the controller treats it as a hard signal), the metric, and an audit event."""

    def __init__(self, traffic: Traffic, record: Callable[[EventDraft], None], metrics: RouterMetrics | None = None) -> None:
        self.traffic, self.record, self.metrics = traffic, record, metrics
        self._announced: set[Colour] = set()

    def __call__(self, change: EjectionChange) -> None:
        if change.ejected:
            if change.colour is self.traffic.stable:
                return  # the stable colour has no backup in nginx's config: a skip of it is a reload in flight
            self._announced.add(change.colour)
        elif change.colour in self._announced:
            self._announced.discard(change.colour)
        else:
            return
        log.warning(change.reason)
        self.traffic.set_ejected(change.colour, change.reason if change.ejected else None)
        if change.ejected and self.metrics is not None:
            self.metrics.ejections.labels(change.colour.value, "nginx").inc()
        self.record(EventDraft("outliers", "backend_ejected" if change.ejected else "backend_readmitted", change.reason,
                               after={"colour": change.colour.value, "kind": "nginx"}))
