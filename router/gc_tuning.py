"""Garbage-collector settings for the long-running `serve` process, where a collector pause is a
pause of the event loop and so of every request in flight.

What startup loads (modules, the app, pydantic models: ~90k objects) lives as long as the process;
left in the collector's care, every full collection walks all of it (tens of ms, several times a
second at a few thousand requests/s). Frozen after startup, it is never walked again. Per-request
objects die by reference counting, so the youngest generation can be collected ten times less often.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations (net of frees) between young collections; CPython's default is 700


def settle_after_startup() -> None:
    """Collect once, move every object alive now out of the collector's sight, space young collections out."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
