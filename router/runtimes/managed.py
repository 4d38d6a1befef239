"""What every runtime does with the backends it owns, whatever runs them (a process, a container).

The router starts the stable colour when it starts, the canary when a rollout starts, and stops
the old colour when the fast-rollback window after a promotion is over. A backend that exits on
its own is noticed within a second (an event; the probes take its traffic away) and restarted if
configured. Everything started here is stopped when the router exits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from router.background import Periodic
from router.routing import Colour
from router.runtimes.options import RuntimeOptions
from router.state import EventDraft, StateStore, StateUnavailable

log = logging.getLogger("bluegreen.runtime")


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run backends at all (no Docker engine, no image); the message says what to do."""


class BackendHandle(Protocol):
    """One running backend. The methods block (they may talk to a daemon); callers use threads."""

    url: str

    def start(self) -> str:
        """Start it (or take over an identical one already running); a sentence saying which."""

    def stop(self, grace_s: float) -> None:
        """Stop gracefully, force after `grace_s`, and release what it held. Safe after it exited."""

    def exit_code(self) -> int | None:
        """None while it runs; the exit status once it ended on its own."""

    def log_tail(self, lines: int) -> str: ...

    def status(self) -> dict[str, Any]: ...


class ManagedRuntime(Periodic):
    """Starts, watches, restarts and stops one backend per colour; subclasses say how to make one."""

    interval_s = 1.0

    def __init__(self, options: RuntimeOptions, store: StateStore) -> None:
        super().__init__()
        self.options, self.store = options, store
        self.backends: dict[Colour, BackendHandle] = {}
        self.restarts: dict[Colour, int] = {colour: 0 for colour in Colour}

    def make_handle(self, colour: Colour) -> BackendHandle:
        raise NotImplementedError

    def prepare(self) -> None:
        """Blocking set-up before the first start (an image build); RuntimeUnavailable when impossible."""

    async def start_colour(self, colour: Colour) -> None:
        """Start `colour` unless it runs already; returns once it is launched (readiness is the probes' job)."""
        if colour in self.backends and await asyncio.to_thread(self.backends[colour].exit_code) is None:
            return
        handle = self.make_handle(colour)
        message = await asyncio.to_thread(handle.start)
        self.backends[colour] = handle
        await self._record("backend_started", f"{colour.value}: {message}")

    async def stop_colour(self, colour: Colour) -> None:
        handle = self.backends.pop(colour, None)
        if handle is not None:
            described = _describe(handle)
            await asyncio.to_thread(handle.stop, self.options.stop_grace_s)
            await self._record("backend_stopped", f"{colour.value} stopped ({described})")

    async def step(self) -> None:
        """Notice a backend that exited on its own; restart it when configured."""
        for colour, handle in list(self.backends.items()):
            code = await asyncio.to_thread(handle.exit_code)
            if code is None:
                continue
            self.backends.pop(colour)
            described, tail = _describe(handle), (await asyncio.to_thread(handle.log_tail, 3)).strip()[-300:]
            await asyncio.to_thread(handle.stop, 0.0)  # release it (a dead container is removed)
            await self._record("backend_crashed", f"{colour.value} ({described}) exited with {code}: {tail}")
            if self.options.restart_on_crash:
                self.restarts[colour] += 1
                await self.start_colour(colour)

    def status(self) -> dict[str, Any]:
        return {colour.value: {**handle.status(), "url": handle.url, "restarts": self.restarts[colour]}
                for colour, handle in self.backends.items()}

    async def stop(self) -> None:
        await super().stop()
        await asyncio.gather(*(self.stop_colour(colour) for colour in list(self.backends)))

    async def _record(self, kind: str, message: str) -> None:
        log.warning(message)
        try:
            await asyncio.to_thread(self.store.record, EventDraft("runtime", kind, message))
        except StateUnavailable as exc:
            log.error("could not record %s: %s", kind, exc)


def _describe(handle: BackendHandle) -> str:
    return ", ".join(f"{key} {value}" for key, value in handle.status().items())
