"""Keeps the nginx data plane on the committed weights.

Every weight change is checked with `nginx -t` before it is committed (a rejected config refuses
the change), then applied. A reload that fails is retried every tick until nginx takes it, so a
rollback is never lost to a transient nginx problem; each distinct failure is logged once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from router.background import Periodic
from router.dataplanes.nginx import NginxDataPlane
from router.errors import NginxError
from router.traffic import Traffic

log = logging.getLogger("bluegreen.nginx")


class NginxSync(Periodic):
    name = "nginx-sync"

    def __init__(self, plane: NginxDataPlane, traffic: Traffic, interval_s: float = 0.25) -> None:
        super().__init__()
        self.plane, self.traffic, self.interval_s = plane, traffic, interval_s
        self.last_error: str | None = None
        self._lock = asyncio.Lock()

    async def check(self, green_bp: int) -> Path:
        """The validated config for `green_bp` (and the live stable colour); NginxError when nginx rejects it."""
        return await self.plane.check(green_bp, self.traffic.stable)

    async def apply(self, green_bp: int, candidate: Path | None = None) -> None:
        async with self._lock:
            try:
                await self.plane.apply(green_bp, self.traffic.stable, candidate)
            except NginxError as exc:
                if str(exc) != self.last_error:
                    log.error("nginx is not on the committed weights yet: %s", exc)
                self.last_error = str(exc)
                return
            if self.last_error:
                log.warning("nginx is on the committed weights again")
            self.last_error = None

    async def step(self) -> None:
        if self.plane.applied != (self.traffic.green_bp, self.traffic.stable):  # a promotion moves the stable colour
            await self.apply(self.traffic.green_bp)
