"""Which colour serves a request: the one assignment rule shared with nginx's `split_clients`.

A session key hashes (MurmurHash2, exactly as nginx computes it) to a 32-bit value; green serves
the keys whose hash falls below the threshold for its weight. nginx turns a percentage into that
threshold as `0xffffffff * basis_points / 10000`, so the same key and weight give the same colour
in both data planes, and raising green's weight only moves keys from blue to green.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum

MURMUR_M = 0x5BD1E995
UINT32 = 0xFFFFFFFF
FULL_WEIGHT_BP = 10_000  # weights are kept in basis points: 25.5 % is 2550


class Colour(str, Enum):
    blue = "blue"
    green = "green"

    @property
    def other(self) -> "Colour":
        return Colour.green if self is Colour.blue else Colour.blue


def murmur_hash2(data: bytes) -> int:
    """nginx's `ngx_murmur_hash2` (seed 0 xor length), bit for bit."""
    length = len(data)
    h = length & UINT32
    full = length - length % 4
    for i in range(0, full, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * MURMUR_M) & UINT32
        k ^= k >> 24
        k = (k * MURMUR_M) & UINT32
        h = ((h * MURMUR_M) & UINT32) ^ k
    tail = length - full
    if tail == 3:
        h ^= data[full + 2] << 16
    if tail >= 2:
        h ^= data[full + 1] << 8
    if tail >= 1:
        h ^= data[full]
        h = (h * MURMUR_M) & UINT32
    h ^= h >> 13
    h = (h * MURMUR_M) & UINT32
    h ^= h >> 15
    return h


def green_threshold(green_bp: int) -> int:
    """The hash bound below which keys go green, as nginx derives it from `NN.NN%`."""
    if green_bp >= FULL_WEIGHT_BP:
        return UINT32 + 1
    return UINT32 * green_bp // FULL_WEIGHT_BP


def bucket(key: str) -> int:
    """The key's bucket in [0, 10000): a readable position on the same scale as the weights."""
    return murmur_hash2(key.encode("utf-8")) * FULL_WEIGHT_BP >> 32


def colour_for_key(key: str, green_bp: int) -> Colour:
    return Colour.green if murmur_hash2(key.encode("utf-8")) < green_threshold(green_bp) else Colour.blue


def colour_at_random(green_bp: int, rng: random.Random | None = None) -> Colour:
    """For a request with no session key: green with probability green_bp / 10000."""
    draw = (rng or random).randrange(FULL_WEIGHT_BP)
    return Colour.green if draw < green_bp else Colour.blue


def percent_to_bp(percent: float | int | str | Decimal) -> int:
    """25 → 2500, 0.01 → 1; more than two decimals or outside 0–100 is a ValueError."""
    try:
        value = Decimal(str(percent))
    except InvalidOperation as exc:
        raise ValueError(f"{percent!r} is not a number") from exc
    if not value.is_finite():
        raise ValueError(f"{percent!r} is not a finite number")
    if value < 0 or value > 100:
        raise ValueError(f"{percent} is outside 0–100")
    scaled = value * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{percent} has more than two decimals")
    return int(scaled)


def bp_to_percent(bp: int) -> float:
    return round(bp / 100, 2)


def weights_for(green_bp: int) -> dict[str, float]:
    """Both colours' shares in percent, as the admin API and the nginx config show them."""
    return {"blue": bp_to_percent(FULL_WEIGHT_BP - green_bp), "green": bp_to_percent(green_bp)}


@dataclass(frozen=True)
class Availability:
    """What the probes know: a colour that is not ready takes no new traffic."""

    blue: bool = True
    green: bool = True

    def ready(self, colour: Colour) -> bool:
        return self.blue if colour is Colour.blue else self.green


def choose(key: str | None, green_bp: int, available: Availability = Availability(),
           rng: random.Random | None = None) -> Colour:
    """The colour for one request: by key (or at random without one), then moved to the other
    colour when the chosen one is not ready and the other is."""
    colour = colour_for_key(key, green_bp) if key else colour_at_random(green_bp, rng)
    if not available.ready(colour) and available.ready(colour.other):
        return colour.other
    return colour
