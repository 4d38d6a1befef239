"""GCRA rate limits: the allowance, then evenly spaced requests."""

from __future__ import annotations

from router.proxy.ratelimit import gcra


def test_gcra_allows_the_hourly_allowance_then_spaces_requests() -> None:
    tat, now = None, 1000.0
    for _ in range(10):
        decision = gcra(tat, now, per_hour=10)
        assert decision.allowed
        tat = decision.tat
    refused = gcra(tat, now, per_hour=10)
    assert not refused.allowed and refused.retry_after_s == 360
    assert gcra(tat, now + 360, per_hour=10).allowed
    assert not gcra(tat, now + 359, per_hour=10).allowed
