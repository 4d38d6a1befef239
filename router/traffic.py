"""The live traffic picture every request reads: weights, stable colour and backend readiness.

Only ever changed after the change is committed to the state store (weights) or observed by a
probe (readiness); reads are plain attribute access so the hot path pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.metrics import RouterMetrics
from router.proxy.routing import Availability
from router.weights import Colour, weights_for


@dataclass
class BackendHealth:
    ready: bool = True
    reason: str = "not probed yet"
    failures_in_row: int = 0
    ejection: str | None = None  # why outlier detection took it out of new traffic; None while admitted

    @property
    def serving(self) -> bool:
        """Takes new requests: its probe passes and it is not ejected."""
        return self.ready and self.ejection is None


@dataclass
class Traffic:
    green_bp: int
    stable: Colour = Colour.blue
    health: dict[Colour, BackendHealth] = field(default_factory=lambda: {c: BackendHealth() for c in Colour})
    metrics: RouterMetrics | None = None

    def __post_init__(self) -> None:
        self._publish()

    @property
    def available(self) -> Availability:
        return Availability(blue=self.health[Colour.blue].serving, green=self.health[Colour.green].serving)

    def weights(self) -> dict[str, float]:
        return weights_for(self.green_bp)

    def apply(self, green_bp: int, stable: Colour | None = None) -> None:
        self.green_bp = green_bp
        if stable is not None:
            self.stable = stable
        self._publish()

    def set_ready(self, colour: Colour, ready: bool, reason: str) -> bool:
        """Record a probe result; True when readiness changed."""
        health = self.health[colour]
        changed = health.ready != ready
        health.ready, health.reason = ready, reason
        self._publish()
        return changed

    def set_ejected(self, colour: Colour, reason: str | None) -> None:
        """Eject `colour` from new traffic (with the reason), or readmit it (None)."""
        self.health[colour].ejection = reason
        self._publish()

    def _publish(self) -> None:
        if self.metrics is None:
            return
        for colour, share in self.weights().items():
            self.metrics.weight.labels(colour).set(share)
        for colour in Colour:
            self.metrics.ready.labels(colour.value).set(1 if self.health[colour].ready else 0)
            self.metrics.ejected.labels(colour.value).set(0 if self.health[colour].ejection is None else 1)
            self.metrics.stable.labels(colour.value).set(1 if colour is self.stable else 0)
