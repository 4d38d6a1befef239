"""Which colour serves a request: the one assignment rule shared with nginx's `split_clients`.

A session key hashes (MurmurHash2, exactly as nginx computes it) to a 32-bit value; green serves
the keys whose hash falls below the threshold for its weight. nginx turns a percentage into that
threshold as `0xffffffff * basis_points / 10000`, so the same key and weight give the same colour
in both data planes, and raising green's weight only moves keys from blue to green.

An operator may pin one colour for QA (`X-Bluegreen-Pin`, with the admin token): built-in proxy only.
"""

from __future__ import annotations

import hmac
import random
from dataclasses import dataclass

from router.weights import FULL_WEIGHT_BP, Colour

MURMUR_M = 0x5BD1E995
UINT32 = 0xFFFFFFFF


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


_KEY_HASHES: dict[str, int] = {}  # str → int only: a dict the garbage collector never walks
KEY_HASHES_KEPT = 20_000  # then start over (a few MB at most, whatever keys clients send)


def key_hash(key: str) -> int:
    """A session key's hash, remembered: a session sends many requests and the hash is pure Python."""
    found = _KEY_HASHES.get(key)
    if found is None:
        if len(_KEY_HASHES) >= KEY_HASHES_KEPT:
            _KEY_HASHES.clear()
        found = _KEY_HASHES[key] = murmur_hash2(key.encode("utf-8"))
    return found


def green_threshold(green_bp: int) -> int:
    """The hash bound below which keys go green, as nginx derives it from `NN.NN%`."""
    if green_bp >= FULL_WEIGHT_BP:
        return UINT32 + 1
    return UINT32 * green_bp // FULL_WEIGHT_BP


def bucket(key: str) -> int:
    """The key's bucket in [0, 10000): a readable position on the same scale as the weights."""
    return key_hash(key) * FULL_WEIGHT_BP >> 32


def colour_for_key(key: str, green_bp: int) -> Colour:
    return Colour.green if key_hash(key) < green_threshold(green_bp) else Colour.blue


def colour_at_random(green_bp: int, rng: random.Random | None = None) -> Colour:
    """For a request with no session key: green with probability green_bp / 10000."""
    draw = (rng or random).randrange(FULL_WEIGHT_BP)
    return Colour.green if draw < green_bp else Colour.blue


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


PIN_HEADER = b"x-bluegreen-pin"  # QA: ask one colour by name; honoured only with the admin token


@dataclass(frozen=True)
class PinRefusal:
    status: int
    message: str


def pinned_colour(pin: bytes, authorization: bytes | None, admin_token: bytes | None) -> Colour | PinRefusal:
    """The colour a request pins with `X-Bluegreen-Pin`, or why it may not.

    Only an operator may bypass the assignment rule (a pinned user would skip the rollout's weights),
    so the request must carry the router's admin token, compared in constant time.
    """
    if admin_token is None:
        return PinRefusal(403, "X-Bluegreen-Pin needs the router's admin token, and none is configured; "
                               "drop the header or set BLUEGREEN_ADMIN_TOKEN")
    scheme, _, token = (authorization or b"").partition(b" ")
    if scheme.lower() != b"bearer" or not token:
        return PinRefusal(401, "X-Bluegreen-Pin needs 'Authorization: Bearer <BLUEGREEN_ADMIN_TOKEN>'; "
                               "drop the header to be routed as usual")
    if not hmac.compare_digest(token.strip(), admin_token):
        return PinRefusal(403, "X-Bluegreen-Pin: the bearer token is not the router's admin token")
    name = pin.strip().lower().decode("latin-1")
    if name not in Colour.__members__:
        return PinRefusal(400, f"X-Bluegreen-Pin must be 'blue' or 'green', not {name[:20]!r}")
    return Colour(name)
