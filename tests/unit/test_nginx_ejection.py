"""What nginx's passive health check holds down, read from access-log lines."""

from __future__ import annotations

from router.dataplanes.nginx_ejection import NginxEjectionWatch
from router.dataplanes.nginx_log import Attempt
from router.weights import Colour

GREEN_OK = [Attempt(Colour.green, 200, 0.1, 0.05)]
GREEN_FAILED_THEN_BLUE = [Attempt(Colour.green, 502, 0.1, None), Attempt(Colour.blue, 200, 0.1, 0.05)]
STRAIGHT_TO_BLUE = [Attempt(Colour.blue, 200, 0.1, 0.05)]


def test_a_skipped_canary_is_ejected_once_and_readmitted_when_reached_again() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=5)
    assert watch.observe(Colour.green, GREEN_OK, 0.0) is None
    assert watch.observe(Colour.green, GREEN_FAILED_THEN_BLUE, 0.1) is None  # a retry is not an ejection
    ejected = watch.observe(Colour.green, STRAIGHT_TO_BLUE, 0.2)
    assert ejected is not None and ejected.colour is Colour.green and ejected.ejected
    assert "green ejected by nginx" in ejected.reason and "straight to blue" in ejected.reason
    assert watch.observe(Colour.green, STRAIGHT_TO_BLUE, 0.3) is None  # said once
    assert watch.ejected == {Colour.green}
    back = watch.observe(Colour.green, GREEN_OK, 4.0)
    assert back is not None and not back.ejected and "readmitted by nginx" in back.reason
    assert watch.ejected == frozenset()


def test_blue_chosen_and_served_says_nothing_about_green() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=5)
    assert watch.observe(Colour.blue, STRAIGHT_TO_BLUE, 0.0) is None
    assert watch.observe(None, STRAIGHT_TO_BLUE, 0.0) is None and watch.observe(Colour.green, [], 0.0) is None
    assert watch.ejected == frozenset()


def test_fail_timeout_without_a_skip_readmits() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=5)
    watch.observe(Colour.green, STRAIGHT_TO_BLUE, 10.0)
    watch.observe(Colour.green, STRAIGHT_TO_BLUE, 12.0)  # still skipped: the timeout counts from here
    assert watch.expire(16.9) == []
    [back] = watch.expire(17.1)
    assert back.colour is Colour.green and not back.ejected and "fail_timeout of 5 s" in back.reason
    assert watch.expire(30.0) == [] and watch.ejected == frozenset()


def test_after_a_promotion_blue_is_the_canary_nginx_skips() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=1)
    change = watch.observe(Colour.blue, GREEN_OK, 0.0)
    assert change is not None and change.colour is Colour.blue and "straight to green" in change.reason
