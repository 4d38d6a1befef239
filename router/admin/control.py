"""Operator-facing changes to the live traffic, each committed to the state store first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from router.events import Event, EventDraft
from router.state import StateStore
from router.traffic import Traffic
from router.weights import weights_for

log = logging.getLogger("bluegreen.control")


Check = Callable[[int], Awaitable[Path]]
Apply = Callable[[int, Path], Awaitable[None]]


class Control:
    """`check` (optional) validates a change with the data plane before it is committed, and
    `apply` carries it to the data plane afterwards (nginx: `nginx -t`, then swap and reload)."""

    def __init__(self, store: StateStore, traffic: Traffic, check: Check | None = None, apply: Apply | None = None) -> None:
        self.store, self.traffic = store, traffic
        self.check, self.apply = check, apply
        self._lock = asyncio.Lock()  # one change at a time, in commit order

    async def set_green_weight(self, green_bp: int, actor: str, reason: str | None = None) -> Event:
        """Commit green's new share, then route by it; a failed commit leaves traffic unchanged."""
        async with self._lock:
            before = self.traffic.weights()
            after = weights_for(green_bp)
            message = f"weights blue {after['blue']:g} % / green {after['green']:g} %" + (f": {reason}" if reason else "")
            candidate = await self.check(green_bp) if self.check else None
            event = await asyncio.to_thread(
                self.store.commit, {"green_bp": green_bp}, EventDraft(actor, "weights_changed", message, before, after))
            self.traffic.apply(green_bp)
            if self.apply and candidate is not None:
                await self.apply(green_bp, candidate)
            log.info("%s (by %s)", message, actor)
            return event
