"""Readiness probes: each backend's `/ready`, polled; a backend that is not ready takes no new traffic.

A connect failure seen by the proxy wakes the probe at once, so a dead backend is taken out of
rotation within one probe timeout instead of one interval.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from router.config import ProbeOptions
from router.errors import StateUnavailable
from router.events import EventDraft
from router.proxy.outliers import Ejection, OutlierDetector
from router.state import StateStore
from router.traffic import Traffic
from router.weights import Colour

log = logging.getLogger("bluegreen.probes")


def probe_verdict(status: int | None, error: str | None, body: str) -> tuple[bool, str]:
    """(ready, reason) from one probe's outcome."""
    if error is not None:
        return False, error
    if status == 200:
        return True, "ready"
    return False, f"/ready answered {status}: {body[:200]}"


class Prober:
    def __init__(self, urls: dict[Colour, str], options: ProbeOptions, traffic: Traffic, store: StateStore,
                 outliers: OutlierDetector | None = None) -> None:
        self.urls, self.options, self.traffic, self.store = urls, options, traffic, store
        self.outliers = outliers  # an ejected colour is readmitted here, once its time is over and a probe passes
        self._wake = {colour: asyncio.Event() for colour in Colour}
        self._client = httpx.AsyncClient(timeout=options.timeout_s)
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()  # event writes under way

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(colour), name=f"probe-{colour.value}") for colour in Colour]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._pending, return_exceptions=True)
        await self._client.aclose()

    def wake(self, colour: Colour, _detail: str = "") -> None:
        """Probe `colour` now (the proxy saw it refuse a connection)."""
        self._wake[colour].set()

    async def probe_once(self, colour: Colour) -> None:
        status, error, body = None, None, ""
        try:
            response = await self._client.get(f"{self.urls[colour]}/ready")
            status, body = response.status_code, response.text
        except httpx.HTTPError as exc:
            error = f"probe failed: {exc!r}"
        ready, reason = probe_verdict(status, error, body)
        if ready:
            await self._readmit_if_due(colour)
        health = self.traffic.health[colour]
        health.failures_in_row = 0 if ready else health.failures_in_row + 1
        if not ready and health.failures_in_row < self.options.failures_to_unready:
            return
        if self.traffic.set_ready(colour, ready, reason):
            await self._announce(colour, ready, reason)

    def announce_ejection(self, ejection: Ejection) -> None:
        """The proxy ejected a colour: record why, off the request's path."""
        self.record_soon(EventDraft(
            "outliers", "backend_ejected", f"{ejection.reason}; its sessions go to {ejection.colour.other.value}",
            after={"colour": ejection.colour.value, "kind": ejection.kind, "count": ejection.count}))

    def record_soon(self, event: EventDraft) -> None:
        """Record `event` in the audit trail off the caller's path (awaited on stop)."""
        task = asyncio.get_running_loop().create_task(self._record(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _readmit_if_due(self, colour: Colour) -> None:
        if self.outliers is None or not self.outliers.due_for_readmission(colour, time.monotonic()):
            return
        ended = self.outliers.readmit(colour, time.monotonic())
        self.traffic.set_ejected(colour, None)
        message = f"{colour.value} readmitted: its ejection is over and its probe passes ({ended.reason if ended else ''})"
        log.warning(message)
        await self._record(EventDraft("outliers", "backend_readmitted", message, after={"colour": colour.value}))

    async def _record(self, event: EventDraft) -> None:
        try:
            await asyncio.to_thread(self.store.record, event)
        except StateUnavailable as exc:
            log.error("could not record %s: %s", event.kind, exc)

    async def _announce(self, colour: Colour, ready: bool, reason: str) -> None:
        word = "ready again" if ready else "not ready"
        message = f"{colour.value} is {word}: {reason}" + ("" if ready else f"; its traffic goes to {colour.other.value}")
        log.warning(message)
        await self._record(EventDraft("probe", "backend_ready" if ready else "backend_unready", message,
                                      after={"colour": colour.value, "ready": ready}))

    async def _loop(self, colour: Colour) -> None:
        while True:
            try:
                await self.probe_once(colour)
            except Exception:  # a probe bug must not stop probing
                log.exception("probe of %s failed unexpectedly", colour.value)
            try:
                await asyncio.wait_for(self._wake[colour].wait(), timeout=self.options.interval_s)
            except TimeoutError:
                pass
            self._wake[colour].clear()
