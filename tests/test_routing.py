"""Pure decision code of the router: assignment, weights, retry budget, rate limits, windows."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.ratelimit import gcra
from router.retry import retry_allowed
from router.routing import (
    Availability, Colour, bucket, choose, colour_at_random, colour_for_key, murmur_hash2, percent_to_bp,
)
from router.session import cookie_value, session_key
from router.windows import SlidingWindow, percentile

# (key, MurmurHash2, the smallest weight in basis points that sends the key green). Checked against
# nginx 1.22's split_clients: at boundary - 1 nginx answered blue, at the boundary green.
NGINX_VECTORS = [
    ("a", 2456313694, 5720), ("ab", 446775395, 1041), ("abc", 324500635, 756), ("abcd", 646393889, 1506),
    ("abcde", 1594468574, 3713), ("session-1", 2955957646, 6883), ("Договор", 1511000755, 3519),
    ("bg_sid_0123456789abcdef", 1877052859, 4371), ("x" * 37, 2946043645, 6860),
]

weights_bp = st.integers(min_value=0, max_value=10_000)
keys = st.text(min_size=1, max_size=64)


@pytest.mark.parametrize(("key", "expected_hash", "boundary_bp"), NGINX_VECTORS)
def test_hash_and_boundary_match_nginx(key: str, expected_hash: int, boundary_bp: int) -> None:
    assert murmur_hash2(key.encode()) == expected_hash
    assert colour_for_key(key, boundary_bp - 1) is Colour.blue
    assert colour_for_key(key, boundary_bp) is Colour.green
    assert bucket(key) == boundary_bp - 1


@pytest.mark.parametrize("percent", [1, 25, 50, 99])
def test_keyed_and_keyless_proportions(percent: float) -> None:
    rng = random.Random(percent)
    bp, n = percent_to_bp(percent), 20_000
    tolerance = 4 * (percent / 100 * (1 - percent / 100) / n) ** 0.5
    keyed = sum(colour_for_key(f"{rng.getrandbits(64):x}", bp) is Colour.green for _ in range(n)) / n
    keyless = sum(colour_at_random(bp, rng) is Colour.green for _ in range(n)) / n
    assert abs(keyed - percent / 100) <= tolerance
    assert abs(keyless - percent / 100) <= tolerance


@given(keys, weights_bp, weights_bp)
def test_raising_green_only_moves_sessions_from_blue_to_green(key: str, a: int, b: int) -> None:
    low, high = sorted((a, b))
    if colour_for_key(key, low) is Colour.green:
        assert colour_for_key(key, high) is Colour.green


@given(keys, weights_bp)
def test_a_key_always_gets_the_same_colour(key: str, bp: int) -> None:
    assert len({choose(key, bp) for _ in range(3)}) == 1
    assert colour_for_key(key, 0) is Colour.blue
    assert colour_for_key(key, 10_000) is Colour.green


@given(keys, weights_bp)
def test_a_colour_that_is_not_ready_gets_no_traffic(key: str, bp: int) -> None:
    assert choose(key, bp, Availability(blue=True, green=False)) is Colour.blue
    assert choose(key, bp, Availability(blue=False, green=True)) is Colour.green
    assert choose(key, bp, Availability(blue=False, green=False)) is colour_for_key(key, bp)


@given(st.integers(min_value=0, max_value=10_000))
def test_percent_round_trip(bp: int) -> None:
    assert percent_to_bp(bp / 100) == bp
    assert percent_to_bp(f"{bp / 100:.2f}") == bp


@pytest.mark.parametrize("bad", [-1, 100.01, 101, "abc", float("nan"), float("inf"), 12.345, 0.001])
def test_bad_percent_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        percent_to_bp(bad)  # type: ignore[arg-type]


def test_session_key_precedence() -> None:
    assert session_key(b"s-1", b"bg_sid=c-1", b"bg_sid").key == "s-1"
    assert session_key(None, b"theme=dark; bg_sid=c-1", b"bg_sid") .key == "c-1"
    assert session_key(b"", b"other=1", b"bg_sid").is_new
    assert cookie_value(b'a=1; bg_sid="q"', b"bg_sid") == "q"
    assert cookie_value(b"bg_sidx=1", b"bg_sid") is None


def test_retry_budget_rule() -> None:
    assert retry_allowed(0, 0, 20, 3)  # the floor always allows a few
    assert not retry_allowed(3, 10, 20, 3)  # 20 % of 10 is 2; the floor of 3 is reached
    assert retry_allowed(19, 100, 20, 3) and not retry_allowed(20, 100, 20, 3)
    assert not retry_allowed(0, 100, 0, 0)


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


def test_window_summary_counts_errors_and_percentiles() -> None:
    window = SlidingWindow(span_s=10)
    window.add(ok=True, latency_s=9.0, ttft_s=None, at=80)  # older than the span: dropped
    for i in range(100):
        window.add(ok=i % 10 != 0, latency_s=i / 100, ttft_s=i / 1000, at=100 + i * 0.05)
    summary = window.summary(now=105)
    assert summary.requests == 100 and summary.errors == 10 and summary.error_rate == pytest.approx(0.1)
    assert summary.latency_p95_s == pytest.approx(0.95) and summary.ttft_p95_s == pytest.approx(0.095)
    assert window.summary(now=105, span_s=1).requests == 20
    assert percentile([], 95) is None and percentile([1.0], 50) == 1.0
