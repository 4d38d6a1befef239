"""Requests-per-hour limits by user tier, with GCRA (one timestamp per user, no request log).

GCRA lets a user spend a tier's whole hourly allowance at once and then one request per
`3600 / limit` seconds, which is the seed's "N requests per hour" without storing N times.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from router.config import RateLimitOptions

HOUR_S = 3600.0
PRUNE_EVERY = 10_000  # decisions between sweeps of users whose allowance is full again


@dataclass(frozen=True)
class Decision:
    allowed: bool
    tat: float  # theoretical arrival time to store for the user
    retry_after_s: int = 0


def gcra(tat: float | None, now: float, per_hour: int) -> Decision:
    """Pure GCRA step: allow when the user's debt stays within the tier's burst."""
    interval = HOUR_S / per_hour
    burst_window = interval * (per_hour - 1)
    current = max(tat if tat is not None else now, now)
    if current - now > burst_window:
        return Decision(False, current, max(1, math.ceil(current - now - burst_window)))
    return Decision(True, current + interval)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    tier: str | None = None
    limit: int = 0
    retry_after_s: int = 0


class RateLimiter:
    def __init__(self, options: RateLimitOptions) -> None:
        self.options = options
        self._tats: dict[tuple[str, str], float] = {}
        self._decisions = 0

    def tier_for(self, user: str | None, tier: str | None) -> str | None:
        if not user:
            return self.options.anonymous_tier
        return tier if tier in self.options.tiers else self.options.default_tier

    def check(self, user: str | None, tier: str | None, client_ip: str, now: float | None = None) -> Verdict:
        if not self.options.enabled:
            return Verdict(True)
        tier_name = self.tier_for(user, tier)
        if tier_name is None or tier_name not in self.options.tiers:
            return Verdict(True)
        now = time.monotonic() if now is None else now
        limit = self.options.tiers[tier_name]
        key = (tier_name, user or client_ip)
        decision = gcra(self._tats.get(key), now, limit)
        self._tats[key] = decision.tat
        self._decisions += 1
        if self._decisions % PRUNE_EVERY == 0:
            self._tats = {k: v for k, v in self._tats.items() if v > now}
        return Verdict(decision.allowed, tier_name, limit, decision.retry_after_s)
