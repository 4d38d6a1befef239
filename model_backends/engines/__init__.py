"""Interchangeable model engines and the fallback cascade that picks one at start."""

from __future__ import annotations

import logging
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
    engine: str
    model: str
    error: str | None  # None for the attempt that succeeded


def load_first_working(
    specs: list[EngineSpec], chat_format: ChatFormat, model_name: str | None, allow_mock: bool
) -> tuple[Engine, list[LoadAttempt]]:
    """Try each spec in order (the primary, then fallbacks); the first that loads serves.

    Raises `EngineError` listing every failure when none loads.
    """
    attempts: list[LoadAttempt] = []
    for spec in specs:
        try:
            engine = create_engine(spec, chat_format, model_name, allow_mock)
            engine.load()
        except EngineError as exc:
            log.error("engine %s (%s) failed to load: %s", spec.engine, spec.model, exc)
            attempts.append(LoadAttempt(spec.engine, spec.model, str(exc)))
            continue
        attempts.append(LoadAttempt(spec.engine, spec.model, None))
        return engine, attempts
    raise EngineError("no engine could load: " + "; ".join(f"{a.engine}: {a.error}" for a in attempts))
