"""Outlier ejection: when a colour is ejected, for how long, when it comes back, and never both."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.config import OutlierOptions
from router.proxy.outliers import OutlierDetector
from router.weights import Colour

GREEN, BLUE = Colour.green, Colour.blue
OPTIONS = OutlierOptions(consecutive_failures=5, failure_rate_percent=50, rate_window_s=2, rate_min_requests=10,
                         base_ejection_s=5, max_ejection_s=60)


def fail(detector: OutlierDetector, times: int, now: float = 100.0, colour: Colour = GREEN, may_eject: bool = True):
    ejection = None
    for i in range(times):
        ejection = detector.observe(colour, False, now + i * 0.001, may_eject) or ejection
    return ejection


def test_consecutive_failures_eject_at_the_limit_and_not_before() -> None:
    detector = OutlierDetector(OPTIONS)
    assert fail(detector, 4) is None and detector.ejected(GREEN) is None
    ejection = detector.observe(GREEN, False, 100.01, True)
    assert ejection is not None and ejection.kind == "consecutive" and ejection.count == 1
    assert ejection.until == pytest.approx(105.01) and "5 failures in a row" in ejection.reason
    assert detector.ejected(GREEN) == ejection


def test_a_success_resets_the_run_of_failures() -> None:
    detector = OutlierDetector(OPTIONS)
    fail(detector, 4)
    detector.observe(GREEN, True, 100.01, True)
    assert fail(detector, 4, now=100.02) is None


def test_a_failure_rate_over_the_window_ejects_interleaved_failures() -> None:
    detector = OutlierDetector(OPTIONS)
    ejection = None
    for i in range(20):  # fail, pass, fail, pass …: never 5 in a row, but half of them
        ejection = detector.observe(GREEN, i % 2 == 1, 100 + i * 0.01, True) or ejection
    assert ejection is not None and ejection.kind == "rate" and "6 of 11 attempts failed" in ejection.reason  # decided on a failure


def test_old_failures_leave_the_rate_window() -> None:
    detector = OutlierDetector(OPTIONS)
    for i in range(8):
        detector.observe(GREEN, i % 2 == 1, 100 + i * 0.01, True)
    for i in range(12):  # three seconds later: the early failures no longer count
        assert detector.observe(GREEN, i % 3 != 0, 103 + i * 0.01, True) is None


def test_never_both_colours_and_never_the_only_serving_one() -> None:
    detector = OutlierDetector(OPTIONS)
    assert fail(detector, 10, colour=GREEN) is not None
    assert fail(detector, 10, colour=BLUE, may_eject=False) is None
    assert detector.ejected(BLUE) is None


def test_readmission_only_after_the_ejection_time_and_the_time_doubles_with_repeats() -> None:
    detector = OutlierDetector(OPTIONS)
    first = fail(detector, 5, now=100)
    assert first is not None and not detector.due_for_readmission(GREEN, first.until - 0.01)
    assert detector.due_for_readmission(GREEN, first.until)
    assert detector.readmit(GREEN, first.until) == first and detector.ejected(GREEN) is None
    second = fail(detector, 5, now=first.until + 1)
    assert second is not None and second.count == 2 and second.until - (first.until + 1) == pytest.approx(10, abs=0.01)
    detector.readmit(GREEN, second.until)
    third = fail(detector, 5, now=second.until + 1)
    assert third is not None and third.until - (second.until + 1) == pytest.approx(20, abs=0.01)


def test_the_doubling_is_capped_and_resets_after_a_long_healthy_spell() -> None:
    detector = OutlierDetector(OPTIONS)
    now = 100.0
    for _ in range(6):
        ejection = fail(detector, 5, now=now)
        assert ejection is not None and ejection.until - now <= OPTIONS.max_ejection_s + 0.01
        now = ejection.until
        detector.readmit(GREEN, now)
    later = fail(detector, 5, now=now + OPTIONS.max_ejection_s + 1)
    assert later is not None and later.count == 1


def test_disabled_detection_never_ejects() -> None:
    detector = OutlierDetector(OPTIONS.model_copy(update={"enabled": False}))
    assert fail(detector, 50) is None


@given(st.lists(st.booleans(), max_size=200))
def test_an_ejection_needs_a_failure_and_at_most_one_is_open(outcomes: list[bool]) -> None:
    detector = OutlierDetector(OPTIONS)
    for i, ok in enumerate(outcomes):
        before = detector.ejected(GREEN)
        ejection = detector.observe(GREEN, ok, 100 + i * 0.05, True)
        if ejection is not None:
            assert not ok and before is None
        else:
            assert detector.ejected(GREEN) == before
