"""The shadow phase's mirror: a sample of live requests is also sent to the canary, and both answers
are checked as a pair, while the user gets the stable colour's answer and is never delayed.

The stable colour's answer is copied as it passes through (up to MAX_ANSWER_BYTES). Only once the
user has all of it is the same request sent to the canary, in a task of its own, so the mirror
never competes with the answer the user waits for. Mirrors are fire-and-forget and bounded: at
most `max_in_flight` run at once and `max_per_s` start per second; one that cannot start is dropped and
counted (`skipped`: too many in flight; `over_rate`: over `max_per_s`), never queued.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass, field

from router.errors import ProxyError
from router.metrics import RouterMetrics
from router.proxy.upstream import Upstream
from router.quality.checks import stream_timing
from router.quality.shadow import ShadowTally, answer_of
from router.quality.verdict import Sides
from router.rollout.machine import ShadowOptions
from router.weights import Colour

log = logging.getLogger("bluegreen.mirror")

MAX_ANSWER_BYTES = 256 * 1024  # an answer longer than this is judged on its beginning
CHRF_INTERVAL_S = 0.05  # chrF (about 1 ms of the event loop per pair) for at most 20 pairs a second
SHADOW_HEADER = (b"x-bluegreen-shadow", b"1")  # tells the canary (and its logs) that nobody waits for this answer

Answer = tuple[str, str | None]


@dataclass
class AnswerTap:
    """An answer's bytes as they pass to the client (up to MAX_ANSWER_BYTES) and when each chunk came,
    read once it has ended."""

    path: str
    received: bytearray = field(default_factory=bytearray)
    arrivals: list[float] = field(default_factory=list)

    def feed(self, chunk: bytes) -> None:
        room = MAX_ANSWER_BYTES - len(self.received)
        if room > 0:
            self.received += chunk[:room]
            self.arrivals.append(time.monotonic())

    def answer(self) -> Answer | None:
        return answer_of(self.path, bytes(self.received))

    def gap_p95_s(self) -> float | None:
        """The p95 gap between the stream's chunks; None for a JSON answer, whose chunks are not tokens."""
        if self.received.lstrip().startswith(b"{"):
            return None
        return stream_timing(self.arrivals, None).gap_p95_s


@dataclass(frozen=True)
class Capture:
    """One sampled request, to send again to the canary once the stable colour has answered."""

    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    canary: Colour
    path: str


class Mirror:
    def __init__(self, upstreams: dict[Colour, Upstream], options: ShadowOptions, metrics: RouterMetrics) -> None:
        self.upstreams, self.options, self.metrics = upstreams, options, metrics
        self.tally = ShadowTally()
        self.active = False  # true only in the shadow phase: the proxy checks this one flag per request
        self._waiting: dict[int, float] = {}  # mirrors in flight: number → when it was sent (monotonic)
        self._sent = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_chrf = -math.inf
        self._next_start = -math.inf  # no mirror starts before this (max_per_s)

    def set_active(self, active: bool, canary: Colour | None = None) -> None:
        """Switch mirroring on (with a fresh tally, whose reasons name the canary) or off."""
        if active and not self.active:
            canary = canary or Colour.green
            self.tally = ShadowTally(sides=Sides(canary.value, canary.other.value))
        self.active = active

    def start(self, path: str, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes,
              canary: Colour) -> Capture | None:
        """A capture to feed with the stable colour's answer when this request is sampled, else None."""
        if random.random() * 100 >= self.options.percent:
            return None
        now = time.monotonic()
        if now < self._next_start:  # over max_per_s: dropped, and counted apart from the busy skips
            self.tally.over_rate += 1
            self.metrics.shadow_requests.labels("over_rate").inc()
            return None
        self._next_start = now + 1 / self.options.max_per_s
        return Capture(method, target, headers, body, canary, path)

    def stable_done(self, capture: Capture, stable: Answer | None, stable_gap_s: float | None = None) -> None:
        """The user has the stable colour's whole answer (None: an error or a cut stream) and, for a stream,
        its p95 gap between chunks: now ask the canary, if there is room."""
        if stable is None:  # nothing to compare the canary's answer with
            self.metrics.shadow_requests.labels("unpaired").inc()
            return
        if len(self._waiting) >= self.options.max_in_flight:
            self.tally.skipped += 1
            self.metrics.shadow_requests.labels("skipped").inc()
            return
        self._sent += 1
        number = self._sent
        self._waiting[number] = time.monotonic()
        self.metrics.shadow_requests.labels("mirrored").inc()
        task = asyncio.get_running_loop().create_task(self._ask(number, capture, stable, stable_gap_s),
                                                       name="shadow-mirror")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def overdue(self) -> int:
        """Mirrors still waiting for the canary longer than the longest answer it has given since the
        phase began: what a hanging canary leaves out of the pairs (see shadow_verdict)."""
        cutoff = time.monotonic() - self.tally.longest_s
        return sum(1 for sent in self._waiting.values() if sent < cutoff)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _ask(self, number: int, capture: Capture, stable: Answer, stable_gap_s: float | None) -> None:
        answer: Answer | None = None
        canary_gap_s = None
        canary = capture.canary
        sent = self._waiting[number]
        try:
            opened = await self.upstreams[canary].open(capture.method, capture.target,
                                                       [*capture.headers, SHADOW_HEADER], capture.body)
            try:
                tap = AnswerTap(capture.path)
                async for piece, _last in opened.pieces():
                    tap.feed(piece)
                if opened.status < 400:
                    answer, canary_gap_s = tap.answer(), tap.gap_p95_s()
            finally:
                await opened.close()
        except ProxyError as exc:  # a failure of the canary: counted against it, nobody sees it
            log.debug("mirror to %s failed: %s", canary.value, exc)
        finally:
            del self._waiting[number]
        now = time.monotonic()
        if answer is not None:
            self.tally.longest_s = max(self.tally.longest_s, now - sent)
        similarity = now - self._last_chrf >= CHRF_INTERVAL_S
        if similarity and answer is not None:
            self._last_chrf = now
        self.tally.add(stable, answer, (stable_gap_s, canary_gap_s), similarity)
        self.metrics.shadow_requests.labels("paired" if answer is not None else "canary_failed").inc()
