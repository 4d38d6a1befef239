"""The analytics writer: the proxy appends what it saw to a bounded queue; a task of the router's own
turns that into JSON lines, a few at a time, and a worker thread writes them to disk.

The proxy's cost is one small object and a `deque.append` per request (a full queue drops the
record and counts it: a slow disk never slows an answer). Parsing, hashing, classifying and
serialising (~20 µs a record) run on the event loop in slices of CHUNK records between which
requests are served: a thread of Python code would hold the GIL for milliseconds at a time and
stall the loop at every I/O call (measured: -35 % throughput). Only the file write, which releases
the GIL, goes to a thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx

from router.analytics.options import AnalyticsOptions
from router.analytics.record import RecordContext, Seen, build_record, nginx_record
from router.analytics.rotation import RotatingLines
from router.metrics import RouterMetrics
from router.throttled_log import ThrottledLog

if TYPE_CHECKING:
    from router.config import RouterConfig

log = logging.getLogger("bluegreen.analytics")
MODEL_LOOKUP_EVERY_S = 60.0  # a colour whose model is unknown is asked again after this
CHUNK = 4  # records made between two turns of the event loop (~0.1 ms)


def load_salt(options: AnalyticsOptions) -> bytes:
    """The configured salt, else the one kept beside the file (made once, readable by the owner only)."""
    if options.salt is not None:
        return options.salt.get_secret_value().encode()
    path = options.salt_path()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(32).encode()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another router made it meanwhile
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as file:
        file.write(salt)
    return salt


class AnalyticsWriter:
    def __init__(self, options: AnalyticsOptions, metrics: RouterMetrics, user_header: str, tier_header: str,
                 tier_for: Callable[[str | None, str | None], str | None],
                 urls: dict[str, str] | None = None) -> None:
        self.options, self.metrics = options, metrics
        self.models: dict[str, str] = {}  # colour → model name: the last one an answer or /v1/models reported
        self.urls = urls or {}  # colour → backend URL, to ask /v1/models when no recent answer named the model
        self._learned_at: dict[str, float] = {}  # when each name was last confirmed (a model set anew changes it)
        self._next_lookup: dict[str, float] = {}
        self._headers = (user_header.lower().encode(), tier_header.lower().encode())
        self._tier_for = tier_for
        self._pending: deque[Seen | str] = deque()  # str: a line of nginx's access log
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = ThrottledLog(log)
        self._context: RecordContext | None = None
        self._lines = RotatingLines(options.path, int(options.rotate_mb * 1024 * 1024), options.keep)

    def submit(self, seen: Seen | str) -> None:
        """Called by the proxy once per request (or by the nginx log's follower once per line): never
        blocks, never raises."""
        if len(self._pending) >= self.options.queue_size:
            self.metrics.analytics_records.labels("dropped").inc()
            return
        self._pending.append(seen)

    def start(self) -> None:
        from router.analytics.categories import classify  # loads the stemmer: only when analytics is on

        try:
            salt = load_salt(self.options)
        except OSError as exc:  # the router serves on; the writes will fail (and be counted) as well
            log.error("cannot keep the analytics salt in %s (%s): user hashes change at the next start",
                      self.options.salt_path(), exc)
            salt = secrets.token_hex(32).encode()
        self._context = RecordContext(salt, self.options.log_text, classify, *self._headers, self._tier_for)
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="analytics-writer")

    async def stop(self) -> None:
        """Write what is still waiting, then close the file."""
        if self._task is None:
            return
        self._stopping.set()
        await self._task
        self._task = None

    async def _run(self) -> None:
        try:
            while True:
                stopping = self._stopping.is_set()
                try:
                    await self._drain()
                except Exception:  # a bug must not stop the writer: the next round tries again
                    log.exception("analytics writer failed; trying again in %s s", self.options.flush_s)
                if stopping:
                    return
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.options.flush_s)
                except TimeoutError:
                    pass
        finally:
            self._lines.close()

    async def _drain(self) -> None:
        assert self._context is not None
        records = []
        for made in range(1, len(self._pending) + 1):  # what is waiting now: newer ones go in the next round
            seen = self._pending.popleft()
            if made % CHUNK == 0:
                await asyncio.sleep(0)  # let the proxy serve between slices
            try:
                if isinstance(seen, str):
                    made_from_log = nginx_record(seen)
                    if made_from_log is None:  # not a public request
                        continue
                    record = made_from_log
                    if record.colour is not None:
                        record = replace(record, model=await self._known_model(record.colour))
                else:
                    record = build_record(seen, self._context)
                    if record.model is not None and record.colour is not None:  # the answer named it
                        self.models[record.colour], self._learned_at[record.colour] = record.model, time.monotonic()
                    elif record.colour is not None:
                        record = replace(record, model=await self._known_model(record.colour))
            except Exception:  # one odd request must not cost the others their lines
                which = "an nginx log line" if isinstance(seen, str) else f"request {seen.request_id}"
                log.exception("cannot make an analytics record of %s", which)  # never the bodies: personal data
                self.metrics.analytics_records.labels("dropped").inc()
                continue
            if record.colour is not None and record.category is not None:
                self.metrics.categorised(record.colour, record.category)
            records.append(record.to_json())
        if not records:
            return
        try:
            await asyncio.to_thread(self._lines.write, records)
        except OSError as exc:
            self._lines.close()  # opened again, maybe successfully, on the next round
            self._failures.warning("write", "cannot write analytics to %s: %s", self.options.path, exc)
            self.metrics.analytics_records.labels("dropped").inc(len(records))
            return
        self.metrics.analytics_records.labels("written").inc(len(records))

    async def _known_model(self, colour: str | None) -> str | None:
        """The colour's model as an answer or its /v1/models reported within the last minute; older than that
        (a model set through the admin API restarts the colour on another file), or never learned (a streamed
        legal answer does not name it), it is asked of /v1/models again, at most once a minute per colour."""
        if colour is None:
            return None
        now = time.monotonic()
        if colour in self.models and now - self._learned_at.get(colour, -MODEL_LOOKUP_EVERY_S) < MODEL_LOOKUP_EVERY_S:
            return self.models[colour]
        url = self.urls.get(colour)
        if url is None or now < self._next_lookup.get(colour, 0.0):
            return self.models.get(colour)
        self._next_lookup[colour] = now + MODEL_LOOKUP_EVERY_S
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                listed = (await client.get(f"{url}/v1/models")).json()["data"]
            self.models[colour], self._learned_at[colour] = str(listed[0]["id"]), now
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.debug("cannot learn %s's model from %s: %s", colour, url, exc)
        return self.models.get(colour)


def writer_for(config: RouterConfig, metrics: RouterMetrics,
               tier_for: Callable[[str | None, str | None], str | None]) -> AnalyticsWriter | None:
    """The writer, or None when analytics is off. With the nginx data plane it is fed nginx's access log.
    Model names come from the backends themselves (answers, /v1/models), never from the configuration:
    a backend may serve under another name (the local runtime prefixes the colour) or another file."""
    if not config.analytics.enabled:
        return None
    return AnalyticsWriter(config.analytics, metrics, config.rate_limit.user_header, config.rate_limit.tier_header,
                           tier_for, {colour: config.backend_url(colour) for colour in ("blue", "green")})
