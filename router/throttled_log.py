"""Logging that stays readable during an incident: one line per kind of failure per interval.

A failing backend can fail a thousand requests a second; the first line of each kind is logged
at once, the rest are counted and summed up in the next line of that kind.
"""

from __future__ import annotations

import logging
import time


class ThrottledLog:
    def __init__(self, logger: logging.Logger, interval_s: float = 1.0) -> None:
        self.logger, self.interval_s = logger, interval_s
        self._next_at: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next_at.get(kind, 0.0):
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._next_at[kind] = now + self.interval_s
        suppressed = self._suppressed.pop(kind, 0)
        more = f" (and {suppressed} more like it since the last line)" if suppressed else ""
        self.logger.warning("%s: " + message + more, kind, *args)
