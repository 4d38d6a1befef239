"""A job that runs every `interval_s` on the event loop until stopped; one step failing never stops it."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("bluegreen")


class Periodic:
    interval_s: float = 0.25
    name: str = "periodic"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def step(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # a bug in one step must not stop the job
                log.exception("%s failed; trying again in %s s", self.name, self.interval_s)
            await asyncio.sleep(self.interval_s)
