"""Fault injection for rollback drills: errors, added latency and hangs, chosen per request."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from model_backends.config import FaultOptions


class FaultKind(str, Enum):
    none = "none"
    error = "error"
    hang = "hang"


def choose_fault(draw: float, error_rate: float, hang_rate: float) -> FaultKind:
    """Map a uniform draw in [0, 1) to a fault: errors take the first share, hangs the next."""
    if draw < error_rate:
        return FaultKind.error
    if draw < error_rate + hang_rate:
        return FaultKind.hang
    return FaultKind.none


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    latency_s: float


class FaultInjector:
    def __init__(self, options: FaultOptions) -> None:
        self.options = options
        self._random = random.Random(options.seed)
        self._seen = 0

    def decide(self) -> FaultDecision:
        self._seen += 1
        if self._seen <= self.options.after_requests:
            return FaultDecision(FaultKind.none, 0.0)
        kind = choose_fault(self._random.random(), self.options.error_rate, self.options.hang_rate)
        return FaultDecision(kind, self.options.latency_ms / 1000.0)
