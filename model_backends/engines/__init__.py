"""Interchangeable model engines and the fallback cascade that picks one at start."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from model_backends.chat_format import ChatFormat
from model_backends.config import EngineSpec
from model_backends.engines.base import Engine
from model_backends.errors import EngineError

log = logging.getLogger(__name__)


def display_name(spec: EngineSpec, explicit: str | None) -> str:
    """The model name clients see: the configured one, else the file or directory name."""
    if explicit:
        return explicit
    if spec.engine == "openai_upstream":
        return spec.openai_upstream.upstream_model or spec.model or "upstream"
    return Path(spec.model).name.removesuffix(".gguf") or spec.engine


def create_engine(spec: EngineSpec, chat_format: ChatFormat, model_name: str | None, allow_mock: bool) -> Engine:
    """Construct (not load) the engine a spec names; imports stay lazy so each extra is optional."""
    name = display_name(spec, model_name)
    if spec.engine == "llama_cpp":
        from model_backends.engines.llama_cpp import LlamaCppEngine

        return LlamaCppEngine(spec.model, spec.llama_cpp, chat_format, name)
    if spec.engine == "transformers":
        from model_backends.engines.hf_transformers import HFTransformersEngine

        return HFTransformersEngine(spec.model, spec.transformers, chat_format, name)
    if spec.engine == "openai_upstream":
        from model_backends.engines.openai_upstream import OpenAIUpstreamEngine

        return OpenAIUpstreamEngine(spec.model, spec.openai_upstream, name)
    if spec.engine == "mock":
        if not allow_mock:
            raise EngineError("the mock engine answers with canned text; enable it explicitly with allow_mock")
        from model_backends.engines.mock import MockEngine

        return MockEngine(name)
    raise EngineError(f"unknown engine {spec.engine!r}")


@dataclass(frozen=True)
class LoadAttempt:
    """One step of the cascade, as `/ready` lists it."""

    engine: str
    model: str
    error: str | None  # None for the attempt that succeeded
    quantization: str | None = None  # the transformers engine's: none, 8bit or 4bit
    seconds: float = 0.0  # how long the attempt took, failed or not

    @property
    def label(self) -> str:
        return f"{self.engine} ({self.quantization})" if self.quantization else self.engine


def load_first_working(
    specs: list[EngineSpec], chat_format: ChatFormat, model_name: str | None, allow_mock: bool
) -> tuple[Engine, list[LoadAttempt]]:
    """Try each spec in order (the primary, then fallbacks); the first that loads serves.

    Raises `EngineError` listing every failure when none loads.
    """
    attempts: list[LoadAttempt] = []
    for spec in specs:
        quantization = spec.transformers.quantization if spec.engine == "transformers" else None
        started = time.perf_counter()
        try:
            engine = create_engine(spec, chat_format, model_name, allow_mock)
            engine.load()
        except EngineError as exc:
            seconds = round(time.perf_counter() - started, 3)
            attempts.append(LoadAttempt(spec.engine, spec.model, str(exc), quantization, seconds))
            log.error("engine %s (%s) failed to load: %s", attempts[-1].label, spec.model, exc)
            continue
        attempts.append(LoadAttempt(spec.engine, spec.model, None, quantization, round(time.perf_counter() - started, 3)))
        return engine, attempts
    raise EngineError("no engine could load: " + "; ".join(f"{a.label}: {a.error}" for a in attempts))
