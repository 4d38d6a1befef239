"""Keeps the nginx data plane on the committed weights.

Every weight change is checked with `nginx -t` before it is committed (a rejected config refuses
the change), then applied. A reload that fails is retried (every tick at first, then backing off to
`max_backoff_s`) until nginx takes it, so a rollback is never lost to a transient nginx problem; each
failure is logged once while it lasts. Every `verify_every_s` the live file is compared with the
committed weights' config: one that someone else wrote (a restart script that rendered another state
file, a hand edit) is replaced, so the router never believes nginx serves what it does not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from router.background import Periodic
from router.dataplanes.nginx import NginxDataPlane, failure_key
from router.errors import NginxError
from router.traffic import Traffic
from router.weights import Colour

log = logging.getLogger("bluegreen.nginx")


class NginxSync(Periodic):
    name = "nginx-sync"

    def __init__(self, plane: NginxDataPlane, traffic: Traffic, interval_s: float = 0.25,
                 verify_every_s: float = 2.0, max_backoff_s: float = 5.0) -> None:
        super().__init__()
        self.plane, self.traffic, self.interval_s = plane, traffic, interval_s
        self.verify_every_s, self.max_backoff_s = verify_every_s, max_backoff_s
        self.last_error: str | None = None
        self._logged: str | None = None  # the last failure logged, in words that stay the same while it lasts
        self._backoff_s = 0.0
        self._next_try = 0.0
        self._verified_at = 0.0
        self._lock = asyncio.Lock()

    async def check(self, green_bp: int, stable: Colour | None = None) -> Path:
        """The validated config for `green_bp` and `stable` (default: the live stable colour); NginxError
        when nginx rejects it."""
        return await self.plane.check(green_bp, stable or self.traffic.stable)

    async def apply(self, green_bp: int, candidate: Path | None = None) -> None:
        async with self._lock:
            try:
                await self.plane.apply(green_bp, self.traffic.stable, candidate)
            except NginxError as exc:
                self._failed(str(exc))
                return
            if self.last_error:
                log.warning("nginx is on the committed weights again")
            self.last_error, self._logged, self._backoff_s = None, None, 0.0

    def _failed(self, error: str) -> None:
        """Keep the failure for /admin/status; log it once while it lasts; try again later and later."""
        self.last_error = error
        if failure_key(error) != self._logged:
            log.error("nginx is not on the committed weights yet: %s", error)
            self._logged = failure_key(error)
        self._backoff_s = min(self.max_backoff_s, max(self.interval_s, self._backoff_s * 2))
        self._next_try = time.monotonic() + self._backoff_s

    async def step(self) -> None:
        wanted = (self.traffic.green_bp, self.traffic.stable)  # a promotion moves the stable colour
        now = time.monotonic()
        if self.plane.applied == wanted and now - self._verified_at >= self.verify_every_s:
            self._verified_at = now
            if await asyncio.to_thread(self.plane.live_differs, *wanted):
                log.warning("nginx's live config is not the one for the committed weights (written by someone "
                            "else, e.g. a restart that rendered another state file): applying it again")
                self.plane.applied = None
        if self.plane.applied != wanted and (now >= self._next_try or self.last_error is None):
            await self.apply(self.traffic.green_bp)

