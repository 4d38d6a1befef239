"""The vocabulary of traffic: the two colours and green's share in basis points (25.5 % is 2550).

Every plane speaks it: the proxy routes by it, the rollout steps it, the state store keeps it and
the nginx template renders it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum

FULL_WEIGHT_BP = 10_000


class Colour(StrEnum):
    blue = "blue"
    green = "green"

    @property
    def other(self) -> Colour:
        return Colour.green if self is Colour.blue else Colour.blue


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
