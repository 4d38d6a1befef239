"""Envoy's retry budget: retries in flight may not exceed a share of all requests in flight.

It keeps a failing green from doubling blue's load: when many green requests fail at once, only
the budgeted share is retried and the rest return green's error.
"""

from __future__ import annotations

from router.config import RetryOptions


def retry_allowed(retries_in_flight: int, requests_in_flight: int, budget_percent: float, min_concurrency: int) -> bool:
    """Pure rule: allowed while retries stay under max(min_concurrency, budget% of requests)."""
    ceiling = max(min_concurrency, requests_in_flight * budget_percent / 100)
    return retries_in_flight < ceiling


class RetryBudget:
    def __init__(self, options: RetryOptions) -> None:
        self.options = options
        self.requests_in_flight = 0
        self.retries_in_flight = 0

    def started(self, is_retry: bool) -> None:
        self.requests_in_flight += 1
        self.retries_in_flight += is_retry

    def finished(self, is_retry: bool) -> None:
        self.requests_in_flight -= 1
        self.retries_in_flight -= is_retry

    def allows(self) -> bool:
        return retry_allowed(self.retries_in_flight, self.requests_in_flight,
                             self.options.budget_percent, self.options.min_concurrency)
