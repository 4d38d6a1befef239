"""Background client traffic through the router, from many sessions, counting what clients saw.

Used by the demo, the rollback benchmark and the end-to-end tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import httpx


class LoadDriver:
    """`workers` threads asking through the router until stopped; bounded by `max_requests` and by
    `max_seconds` from the start. The bounds are a safety net, set far beyond what a test needs even on
    a fast machine: a rollout whose load ran out stops getting canary traffic and is held."""

    def __init__(self, url: str, workers: int = 4, sessions: int = 200, max_requests: int = 200_000,
                 questions: list[str] | None = None, max_tokens: int | None = None, stream_every: int = 0,
                 temperature: float | None = None, max_seconds: float = 180.0) -> None:
        self.url, self.workers, self.sessions, self.max_requests = url, workers, sessions, max_requests
        self.max_seconds = max_seconds
        self._deadline = math.inf
        self.stream_every = stream_every  # every n-th request asks for a stream (0: none)
        self.temperature = temperature  # None: the backend's own; 0: greedy, the same answer every time
        self.questions = questions or ["Что такое договор?"]
        self.max_tokens = max_tokens
        self.statuses: Counter[int] = Counter()
        self.colours: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sent = 0
        self._lock = threading.Lock()

    def _next(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._sent >= self.max_requests or time.monotonic() > self._deadline:
                return None
            self._sent += 1
            return self._sent

    def _work(self) -> None:
        with httpx.Client(timeout=30) as client:
            while (n := self._next()) is not None:
                body: dict[str, object] = {"question": self.questions[n % len(self.questions)]}
                if self.max_tokens:
                    body["max_tokens"] = self.max_tokens
                if self.temperature is not None:
                    body["temperature"] = self.temperature
                streamed = bool(self.stream_every) and n % self.stream_every == 0
                if streamed:
                    body["stream"] = True
                try:
                    response = client.post(f"{self.url}/api/v1/chat/legal", json=body,
                                           headers={"X-Session-ID": f"client-{n % self.sessions}"})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    time.sleep(0.05)  # as a client would: a router still starting is not asked 1,000 times a second
                    continue
                with self._lock:
                    self.statuses[response.status_code] += 1
                    self.colours[response.headers.get("x-backend", "?")] += 1
                if response.status_code >= 400 or (streamed and '"error"' in response.text):
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def __enter__(self) -> LoadDriver:
        self._deadline = time.monotonic() + self.max_seconds
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
