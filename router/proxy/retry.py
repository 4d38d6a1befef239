"""When a failed green request may be retried on blue: Envoy's retry budget, plus blue's headroom.

The budget keeps a failing green from doubling blue's load: retries in flight may not exceed a
share of all requests in flight. But blue carried every request before the rollout, so beyond the
budget a retry may still go to blue while blue carries no more than the client requests now in
flight (or a configured ceiling) and is not failing itself. With both colours failing, only the
budget applies, and each request is retried at most once: no storm.
"""

from __future__ import annotations

from router.config import RetryOptions
from router.weights import Colour


def retry_allowed(retries_in_flight: int, requests_in_flight: int, budget_percent: float, min_concurrency: int) -> bool:
    """Pure rule: allowed while retries stay under max(min_concurrency, budget% of requests)."""
    ceiling = max(min_concurrency, requests_in_flight * budget_percent / 100)
    return retries_in_flight < ceiling


def blue_has_headroom(blue_in_flight: int, client_requests_in_flight: int, ceiling: int | None) -> bool:
    """Pure rule: blue may take one more while it carries less than it did before the rollout."""
    return blue_in_flight < (ceiling if ceiling is not None else client_requests_in_flight)


class RetryBudget:
    """Attempts in flight, in all and per colour; an attempt is a request sent to one backend."""

    def __init__(self, options: RetryOptions) -> None:
        self.options = options
        self.requests_in_flight = 0
        self.retries_in_flight = 0
        self.in_flight = {colour: 0 for colour in Colour}

    def started(self, colour: Colour, is_retry: bool) -> None:
        self.requests_in_flight += 1
        self.retries_in_flight += is_retry
        self.in_flight[colour] += 1

    def finished(self, colour: Colour, is_retry: bool) -> None:
        self.requests_in_flight -= 1
        self.retries_in_flight -= is_retry
        self.in_flight[colour] -= 1

    def allows(self) -> bool:
        return retry_allowed(self.retries_in_flight, self.requests_in_flight,
                             self.options.budget_percent, self.options.min_concurrency)

    def blue_can_carry_more(self, client_requests_in_flight: int) -> bool:
        """Beyond the budget: blue's headroom (the caller checks that blue is not failing)."""
        return self.options.blue_headroom and blue_has_headroom(
            self.in_flight[Colour.blue], client_requests_in_flight, self.options.blue_in_flight_ceiling)
