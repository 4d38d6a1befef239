"""One generation at a time per model, a bounded line of waiting requests, and cancellation.

A model instance is a single sequential resource (a llama.cpp context, one GPU's worth of
weights), so generations run one by one on a dedicated thread. The slot is handed to the next
waiter only when the worker thread has really finished, so a cancelled request can never leave
two generations running on the same model.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from model_backends.engines.base import Engine, Piece, Prompt, SamplingParams
from model_backends.errors import QueueFull

_END = object()  # marks the end of a generation in the buffer
FLUSH_S = 0.02  # longest a generated piece waits before the event loop collects it


class Generation:
    """A running generation: pieces flow from the worker thread to the request's coroutine.

    The worker appends to a buffer and wakes the event loop at once only for the first piece and
    the end; in between the loop collects every `flush_s` (`FLUSH_S` for a stream, never for an
    answer sent whole). A fast engine then costs a few loop wake-ups per second instead of one per
    token (each a GIL hand-off between two threads), while the time to first token is untouched
    and later pieces of a stream wait at most `FLUSH_S`.
    """

    def __init__(
        self, engine: Engine, prompt: Prompt, params: SamplingParams, loop: asyncio.AbstractEventLoop,
        flush_s: float | None = FLUSH_S,
    ) -> None:
        self._engine, self._prompt, self._params = engine, prompt, params
        self._loop = loop
        self._flush_s = flush_s
        self._buffer: list[object] = []
        self._lock = threading.Lock()
        self._wake_pending = False
        self._woken_once = False
        self._last_wake = 0.0
        self._ready = asyncio.Event()
        self.cancel = threading.Event()

    def _put(self, item: object) -> None:
        with self._lock:
            self._buffer.append(item)
            now = time.monotonic()
            urgent = (not self._woken_once or item is _END
                      or (self._flush_s is not None and now - self._last_wake >= self._flush_s))
            if self._wake_pending or not urgent:
                return
            self._wake_pending, self._woken_once, self._last_wake = True, True, now
        with contextlib.suppress(RuntimeError):  # the loop is gone at shutdown: nobody is listening
            self._loop.call_soon_threadsafe(self._ready.set)

    def _take(self) -> list[object]:
        with self._lock:
            items, self._buffer = self._buffer, []
            self._wake_pending = False
            self._ready.clear()
        return items

    def run_blocking(self) -> None:
        """Worker-thread body: stream from the engine until done or cancelled."""
        try:
            with contextlib.closing(self._engine.stream(self._prompt, self._params, self.cancel)) as pieces:
                for piece in pieces:
                    self._put(piece)
                    if self.cancel.is_set() and piece.finish_reason is None:
                        self._put(Piece(finish_reason="cancelled"))
                        break
        except Exception as exc:  # noqa: BLE001 - handed to the request that owns it
            self._put(exc)
        finally:
            self._put(_END)

    async def pieces(self) -> AsyncIterator[Piece]:
        """The answer in pieces (those that arrived together are merged into one); leaving
        early (disconnect, timeout) stops the worker."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_s):
                        await self._ready.wait()
                text, tokens, finish, done, error = [], 0, None, False, None
                for item in self._take():
                    if item is _END:
                        done = True
                    elif isinstance(item, Exception):
                        error = item
                    elif isinstance(item, Piece):
                        text.append(item.text)
                        tokens += item.tokens
                        finish = item.finish_reason or finish
                if text or tokens or finish:
                    yield Piece("".join(text), tokens, finish)
                if error is not None:
                    raise error
                if done:
                    return
        finally:
            self.cancel.set()


class GenerationScheduler:
    """Admits, queues and runs generations for one engine."""

    def __init__(self, queue_size: int, max_runtime_s: float) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generation")
        self._queue_size = queue_size
        self._max_runtime_s = max_runtime_s
        self._busy = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def _acquire(self) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        if self.waiting >= self._queue_size:
            raise QueueFull(f"{self.waiting} requests are already waiting for the model")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser hands the slot over directly; _busy stays True
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot reached us just as we left: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy = False

    async def start(self, engine: Engine, prompt: Prompt, params: SamplingParams, streamed: bool = True) -> Generation:
        """Wait for the model (raising `QueueFull` at once when the line is full), then start.

        An answer that is not `streamed` is read whole, so the loop is woken only for its first
        piece (the time to first token) and its end."""
        await self._acquire()
        loop = asyncio.get_running_loop()
        generation = Generation(engine, prompt, params, loop, flush_s=FLUSH_S if streamed else None)
        try:
            future = loop.run_in_executor(self._executor, generation.run_blocking)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        # A generation nobody reads (its client vanished before the first byte) still ends.
        watchdog = loop.call_later(self._max_runtime_s, generation.cancel.set)
        future.add_done_callback(lambda _: watchdog.cancel())
        return generation

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
