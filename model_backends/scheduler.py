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
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator

from model_backends.chat_format import Messages
from model_backends.engines.base import Engine, Piece, SamplingParams

_END = object()


class QueueFull(Exception):
    """Every waiting place is taken; the client should retry later."""


class Generation:
    """A running generation: pieces flow from the worker thread into an asyncio queue."""

    def __init__(self, engine: Engine, messages: Messages, params: SamplingParams, loop: asyncio.AbstractEventLoop) -> None:
        self._engine, self._messages, self._params = engine, messages, params
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.cancel = threading.Event()

    def _put(self, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone at shutdown: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def run_blocking(self) -> None:
        """Worker-thread body: stream from the engine until done or cancelled."""
        try:
            with contextlib.closing(self._engine.stream(self._messages, self._params, self.cancel)) as pieces:
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
        """The answer piece by piece; leaving early (disconnect, timeout) stops the worker."""
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise item
                assert isinstance(item, Piece)
                yield item
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

    @property
    def busy(self) -> bool:
        return self._busy

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

    async def start(self, engine: Engine, messages: Messages, params: SamplingParams) -> Generation:
        """Wait for the model (raising `QueueFull` at once when the line is full), then start."""
        await self._acquire()
        loop = asyncio.get_running_loop()
        generation = Generation(engine, messages, params, loop)
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
