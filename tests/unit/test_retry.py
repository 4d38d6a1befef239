"""The retry budget and blue's headroom: how many failed green requests blue may take back."""

from __future__ import annotations

from router.config import RetryOptions
from router.proxy.retry import RetryBudget, blue_has_headroom, retry_allowed
from router.weights import Colour


def test_retry_budget_rule() -> None:
    assert retry_allowed(0, 0, 20, 3)  # the floor always allows a few
    assert not retry_allowed(3, 10, 20, 3)  # 20 % of 10 is 2; the floor of 3 is reached
    assert retry_allowed(19, 100, 20, 3) and not retry_allowed(20, 100, 20, 3)
    assert not retry_allowed(0, 100, 0, 0)


def test_blue_takes_back_at_most_what_it_carried_before_the_rollout() -> None:
    assert blue_has_headroom(blue_in_flight=7, client_requests_in_flight=8, ceiling=None)
    assert not blue_has_headroom(blue_in_flight=8, client_requests_in_flight=8, ceiling=None)
    assert blue_has_headroom(blue_in_flight=20, client_requests_in_flight=8, ceiling=32)  # a fixed ceiling instead
    assert not blue_has_headroom(blue_in_flight=32, client_requests_in_flight=64, ceiling=32)


def test_the_budget_counts_attempts_per_colour() -> None:
    budget = RetryBudget(RetryOptions(budget_percent=20, min_concurrency=0))
    for _ in range(4):
        budget.started(Colour.green, is_retry=False)
    budget.started(Colour.blue, is_retry=True)
    assert budget.in_flight == {Colour.blue: 1, Colour.green: 4} and not budget.allows()  # 1 retry of 5 is 20 %
    assert budget.blue_can_carry_more(client_requests_in_flight=5)
    assert not RetryBudget(RetryOptions(blue_headroom=False)).blue_can_carry_more(client_requests_in_flight=5)
    budget.finished(Colour.blue, is_retry=True)
    assert budget.in_flight[Colour.blue] == 0 and budget.retries_in_flight == 0
