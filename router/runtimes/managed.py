"""What every runtime does with the backends it owns, whatever runs them (a process, a container).

The router starts the stable colour when it starts, the canary when a rollout starts, and stops
the old colour when the fast-rollback window after a promotion is over. A started backend is
watched until its `/ready` passes (an event with the load time), says loading failed for good
(a start error the rollout fails on at once, and it is stopped) or `ready_timeout_s` runs out
(it is stopped). A backend that exits on its own is noticed within a second (an event; the probes
take its traffic away) and restarted if configured. Everything started here is stopped when the
router exits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from router.background import Periodic
from router.errors import RuntimeUnavailable, StateUnavailable
from router.events import EventDraft
from router.runtimes.options import BackendSpec, RuntimeOptions
from router.state import StateStore
from router.weights import Colour

log = logging.getLogger("bluegreen.runtime")


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


@dataclass(frozen=True)
class Readiness:
    ready: bool
    failed: bool  # the backend gave up loading (no engine could load the model): final, unlike "loading"
    reason: str


@dataclass
class Running:
    handle: BackendHandle
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: float | None = None

    def status(self) -> dict[str, Any]:
        loading = None if self.ready_after_s is not None else round(time.monotonic() - self.started_at, 1)
        return {**self.handle.status(), "url": self.handle.url, "ready_after_s": self.ready_after_s,
                "loading_for_s": loading}


class ManagedRuntime(Periodic):
    """Starts, watches, restarts and stops one backend per colour; subclasses say how to make one."""

    interval_s = 1.0

    def __init__(self, options: RuntimeOptions, store: StateStore) -> None:
        super().__init__()
        self.options, self.store = options, store
        self.backends: dict[Colour, Running] = {}
        self.restarts: dict[Colour, int] = {colour: 0 for colour in Colour}
        self.start_errors: dict[Colour, str] = {}  # why the last start of a colour failed (read by the controller)
        # Models set through the admin API win over the configured ones, also after a restart.
        self.models: dict[str, dict[str, str]] = store.setting("models", {}) or {}
        self._http = httpx.AsyncClient(timeout=2.0)

    def spec(self, colour: Colour) -> BackendSpec:
        """The colour's configured backend, with the model (and engine) set through the admin API over it."""
        spec = self.options.spec(colour)
        chosen = self.models.get(colour.value)
        return spec if not chosen else spec.model_copy(update=chosen)

    async def set_model(self, colour: Colour, chosen: dict[str, str] | None) -> None:
        """Start `colour` on `chosen` from now on (None: the configured model again). A running backend of
        that colour still serves the old model, so it is stopped: the next rollout starts the new one."""
        if chosen:
            self.models[colour.value] = chosen
        else:
            self.models.pop(colour.value, None)
        self.start_errors.pop(colour, None)
        await self.stop_colour(colour, "stopped: its model changed")

    def make_handle(self, colour: Colour) -> BackendHandle:
        raise NotImplementedError

    def prepare(self) -> None:
        """Blocking set-up before the first start (an image build); RuntimeUnavailable when impossible."""

    async def start_colour(self, colour: Colour) -> None:
        """Start `colour` unless it runs already; returns once it is launched. A start the runtime
        refuses (no GPU, a failed image build) is an event and `start_errors[colour]`, not an exception."""
        if colour in self.backends and await asyncio.to_thread(self.backends[colour].handle.exit_code) is None:
            return
        try:
            handle = self.make_handle(colour)
            message = await asyncio.to_thread(handle.start)
        except RuntimeUnavailable as exc:
            self.start_errors[colour] = str(exc)
            await self._record("backend_start_failed", f"{colour.value}: {exc}")
            return
        self.start_errors.pop(colour, None)
        self.backends[colour] = Running(handle)
        await self._record("backend_started", f"{colour.value}: {message}")

    async def stop_colour(self, colour: Colour, why: str = "stopped") -> None:
        running = self.backends.pop(colour, None)
        if running is not None:
            described = _describe(running.handle)
            await asyncio.to_thread(running.handle.stop, self.options.stop_grace_s)
            await self._record("backend_stopped", f"{colour.value} {why} ({described})")

    async def step(self) -> None:
        """Notice a backend that became ready, one that is too slow to, and one that exited on its own."""
        for colour, running in list(self.backends.items()):
            code = await asyncio.to_thread(running.handle.exit_code)
            if code is not None:
                await self._crashed(colour, running.handle, code)
            elif running.ready_after_s is None:
                await self._watch_start(colour, running)

    async def _crashed(self, colour: Colour, handle: BackendHandle, code: int) -> None:
        self.backends.pop(colour)
        described, tail = _describe(handle), (await asyncio.to_thread(handle.log_tail, 3)).strip()[-300:]
        await asyncio.to_thread(handle.stop, 0.0)  # release it (a dead container is removed)
        await self._record("backend_crashed", f"{colour.value} ({described}) exited with {code}: {tail}")
        if self.options.restart_on_crash:
            self.restarts[colour] += 1
            await self.start_colour(colour)

    async def _watch_start(self, colour: Colour, running: Running) -> None:
        elapsed = time.monotonic() - running.started_at
        readiness = await self._readiness(running.handle.url)
        if readiness.ready:
            running.ready_after_s = round(elapsed, 1)
            await self._record("backend_ready", f"{colour.value} ready {elapsed:.1f} s after its start")
        elif readiness.failed:
            # The backend says no engine can load its model: waiting out ready_timeout_s would not change that.
            self.start_errors[colour] = readiness.reason
            await self._record("backend_start_failed", f"{colour.value} could not load its model "
                                                       f"{elapsed:.1f} s after its start: {readiness.reason}")
            await self.stop_colour(colour, "stopped: its model failed to load")
        elif elapsed > self.options.ready_timeout_s:
            await self._record("backend_start_timeout", f"{colour.value} not ready after "
                                                        f"{self.options.ready_timeout_s:g} s ({readiness.reason})")
            await self.stop_colour(colour, "stopped: too slow to start")

    async def _readiness(self, url: str) -> Readiness:
        """What `/ready` says: ready, failed for good (the backend's status "failed"), or not yet, and why."""
        try:
            response = await self._http.get(f"{url}/ready")
        except httpx.HTTPError as exc:
            return Readiness(False, False, f"no answer: {exc.__class__.__name__}")
        if response.status_code == 200:
            return Readiness(True, False, "ready")
        try:
            body = response.json()
        except ValueError:
            return Readiness(False, False, f"HTTP {response.status_code}")
        if not isinstance(body, dict):
            return Readiness(False, False, f"HTTP {response.status_code}")
        return Readiness(False, body.get("status") == "failed", str(body.get("reason", response.status_code)))

    def status(self) -> dict[str, Any]:
        return {colour.value: {**running.status(), "restarts": self.restarts[colour], "model": self.spec(colour).model}
                for colour, running in self.backends.items()}

    async def stop(self) -> None:
        await super().stop()
        await asyncio.gather(*(self.stop_colour(colour) for colour in list(self.backends)))
        await self._http.aclose()

    async def _record(self, kind: str, message: str) -> None:
        log.warning(message)
        try:
            await asyncio.to_thread(self.store.record, EventDraft("runtime", kind, message))
        except StateUnavailable as exc:
            log.error("could not record %s: %s", kind, exc)


def _describe(handle: BackendHandle) -> str:
    return ", ".join(f"{key} {value}" for key, value in handle.status().items())
