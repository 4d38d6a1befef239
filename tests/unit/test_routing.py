"""The assignment rule: nginx's hash bit for bit, stickiness, monotonic moves, readiness."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.proxy.routing import Availability, bucket, choose, colour_at_random, colour_for_key, murmur_hash2
from router.weights import Colour, percent_to_bp

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
