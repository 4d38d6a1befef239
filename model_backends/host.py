"""Loads the engine in the background and tracks whether the backend is ready to serve.

Loading a 24B model takes minutes, so the HTTP server starts first: `/health` answers at once
and `/ready` says 503 with the reason until the model is loaded and a warm-up generation passed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from enum import StrEnum

from model_backends.config import BackendConfig, EngineSpec
from model_backends.engines import LoadAttempt, load_first_working
from model_backends.engines.base import Engine, SamplingParams
from model_backends.errors import EngineError

log = logging.getLogger(__name__)

WARMUP_MESSAGES = [{"role": "user", "content": "Что такое договор?"}]


class HostState(StrEnum):
    loading = "loading"
    ready = "ready"
    failed = "failed"


class EngineHost:
    def __init__(self, config: BackendConfig) -> None:
        self._config = config
        self.state = HostState.loading
        self.reason = "model is loading"
        self.engine: Engine | None = None
        self.attempts: list[LoadAttempt] = []
        self.load_time_s: float | None = None
        self.warmup_s: float | None = None

    def specs(self) -> list[EngineSpec]:
        primary = EngineSpec.model_validate(
            self._config.model_dump(include={"engine", "model", "llama_cpp", "transformers", "openai_upstream"})
        )
        return [primary, *self._config.fallbacks]

    def load_blocking(self) -> None:
        """Load the first working engine and warm it up; never raises (the state says what failed).

        An error no engine foresaw (a bug, a library's own exception) fails the load too, with its type
        and message in `/ready`, rather than leaving the backend "loading" for ever.
        """
        try:
            self._load()
        except Exception as exc:  # whatever it was, /ready must say so
            log.exception("model load failed unexpectedly")
            self.state, self.reason = HostState.failed, f"model load failed unexpectedly: {type(exc).__name__}: {exc}"

    def _load(self) -> None:
        started = time.perf_counter()
        if self._config.faults.load_delay_s:
            self.reason = f"model is loading (drill: delayed {self._config.faults.load_delay_s:g} s)"
            time.sleep(self._config.faults.load_delay_s)
        try:
            engine, self.attempts = load_first_working(
                self.specs(), self._config.chat_format, self._config.model_name, self._config.allow_mock
            )
        except EngineError as exc:
            self.state, self.reason = HostState.failed, str(exc)
            return
        self.load_time_s = round(time.perf_counter() - started, 3)
        if self._config.warmup:
            warm_started = time.perf_counter()
            try:
                for _ in engine.stream(engine.prepare(WARMUP_MESSAGES), SamplingParams(4, 0.0, 1.0), threading.Event()):
                    pass
            except EngineError as exc:
                self.state, self.reason = HostState.failed, f"warm-up generation failed: {exc}"
                engine.close()
                return
            self.warmup_s = round(time.perf_counter() - warm_started, 3)
        self.engine = engine
        self.state, self.reason = HostState.ready, "ready"
        log.info("engine %s ready in %.2fs", engine.name, self.load_time_s)

    def describe(self) -> dict[str, object]:
        info = self.engine.info() if self.engine else None
        return {
            "ready": self.state is HostState.ready,
            "status": self.state.value,
            "reason": self.reason,
            "engine": info.engine if info else None,
            "model": info.model if info else None,
            "context_window": info.context_window if info else None,
            "chat_format": info.chat_format if info else None,
            "details": info.details if info else {},
            "attempts": [asdict(a) for a in self.attempts],
            "load_time_s": self.load_time_s,
            "warmup_s": self.warmup_s,
        }
