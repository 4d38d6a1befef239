"""From chat messages to a running, accounted-for generation: the path every chat route shares.

Checks readiness, applies drill faults, enforces the context window, waits for the model's
slot, and records time to first token and token counts as the answer streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from model_backends.chat_format import Messages
from model_backends.config import AnswerFault, BackendConfig
from model_backends.engines.base import Piece, SamplingParams
from model_backends.errors import ChatFormatError, CompletionError, EngineError, EngineRequestError, QueueFull
from model_backends.faults import BadAnswer, FaultInjector, FaultKind
from model_backends.host import EngineHost
from model_backends.metrics import BackendMetrics
from model_backends.scheduler import Generation, GenerationScheduler

RETRY_AFTER_S = 2
# Prompts up to this many characters are tokenized on the event loop (about a millisecond at most):
# a hop to a worker thread and back costs more (two thread wake-ups, milliseconds on a busy machine).
# Longer ones go to a thread, so /health never waits behind a long document's tokenization.
INLINE_PREPARE_CHARS = 1024


class Answer:
    """One request's generation and its figures (tokens, time to first token, finish reason)."""

    def __init__(self, generation: Generation | BadAnswer, prompt_tokens: int | None, started: float, metrics: BackendMetrics) -> None:
        self._generation = generation
        self.prompt_tokens = prompt_tokens or 0
        self.completion_tokens = 0
        self.finish_reason = "stop"
        self.first_token_s: float | None = None
        self._started = started
        self._metrics = metrics

    async def pieces(self) -> AsyncIterator[Piece]:
        self._metrics.generating.set(1)
        first_at: float | None = None
        try:
            async for piece in self._generation.pieces():
                self.completion_tokens += piece.tokens
                if piece.finish_reason:
                    self.finish_reason = piece.finish_reason
                if piece.text and first_at is None:
                    first_at = time.perf_counter()
                    self.first_token_s = first_at - self._started
                    self._metrics.time_to_first_token.observe(self.first_token_s)
                if piece.text:
                    yield piece
        except EngineRequestError as exc:
            raise CompletionError(exc.status_code, str(exc), "invalid_request_error") from exc
        except EngineError as exc:
            raise CompletionError(502, f"the model failed while generating: {exc}", "engine_error") from exc
        finally:
            self._metrics.generating.set(0)
            self._metrics.generated_tokens.inc(self.completion_tokens)
            if first_at is not None and self.completion_tokens > 1:
                elapsed = time.perf_counter() - first_at
                if elapsed > 0:
                    self._metrics.tokens_per_second.observe((self.completion_tokens - 1) / elapsed)

    async def text(self) -> str:
        return "".join([piece.text async for piece in self.pieces()])


class CompletionService:
    def __init__(self, config: BackendConfig, host: EngineHost, metrics: BackendMetrics) -> None:
        self.config = config
        self.host = host
        self.metrics = metrics
        self.faults = FaultInjector(config.faults)
        self.scheduler = GenerationScheduler(config.queue_size, max_runtime_s=config.request_timeout_s + 5)
        metrics.queue_depth.set_function(lambda: self.scheduler.waiting)

    def sampling(
        self, max_tokens: int | None, temperature: float | None, top_p: float | None, ignore_eos: bool = False,
        stop: str | list[str] | None = None,
    ) -> SamplingParams:
        defaults = self.config.generation
        return SamplingParams(
            max_tokens=max_tokens if max_tokens is not None else defaults.max_tokens,
            temperature=temperature if temperature is not None else defaults.temperature,
            top_p=top_p if top_p is not None else defaults.top_p,
            ignore_eos=ignore_eos,
            stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        )

    async def _apply_faults(self) -> AnswerFault:
        """Fail, hang or delay as drilled; returns the bad answer to serve, if any."""
        decision = self.faults.decide()
        if decision.kind is FaultKind.error:
            self.metrics.injected_faults.labels("error").inc()
            raise CompletionError(500, "injected fault (drill): this backend was told to fail", "injected_fault")
        if decision.kind is FaultKind.hang:
            self.metrics.injected_faults.labels("hang").inc()
            await asyncio.Event().wait()  # never answers; ends with the client or the request timeout
        if decision.latency_s > 0:
            self.metrics.injected_faults.labels("latency").inc()
            await asyncio.sleep(decision.latency_s)
        if decision.answer is not AnswerFault.none:
            self.metrics.injected_faults.labels(f"answer_{decision.answer}").inc()
        return decision.answer

    async def begin(self, messages: Messages, params: SamplingParams, prompt_field: str, streamed: bool = True) -> Answer:
        """Admit a request and start its generation; raises `CompletionError` when it cannot.

        `streamed` says whether the client reads the answer piece by piece or whole."""
        started = time.perf_counter()
        engine = self.host.engine
        if engine is None:
            raise CompletionError(503, f"model not ready: {self.host.reason}", "not_ready", retry_after=5)
        answer_fault = await self._apply_faults() if self.config.faults.enabled else AnswerFault.none
        try:
            # Tokenized once: the context-window check below and the generation use the same tokens.
            if sum(len(m["content"]) for m in messages) <= INLINE_PREPARE_CHARS:
                prompt = engine.prepare(messages)
            else:
                prompt = await asyncio.to_thread(engine.prepare, messages)
        except ChatFormatError as exc:
            raise CompletionError(400, str(exc), "invalid_request_error", param=prompt_field) from exc
        prompt_tokens = prompt.token_count
        window = engine.info().context_window
        if prompt_tokens is not None and window is not None and prompt_tokens >= window:
            raise CompletionError(
                400,
                f"the prompt is {prompt_tokens} tokens but the model's context window is {window} tokens; "
                "shorten the question or the context",
                "invalid_request_error", param=prompt_field, code="context_length_exceeded",
            )
        if prompt_tokens:
            self.metrics.prompt_tokens.inc(prompt_tokens)
        try:
            generation = await self.scheduler.start(engine, prompt, params, streamed)
        except QueueFull as exc:
            raise CompletionError(
                503, f"the model is busy: {exc}; retry later", "overloaded", retry_after=RETRY_AFTER_S
            ) from exc
        if answer_fault is not AnswerFault.none:
            return Answer(BadAnswer(generation, answer_fault, params.max_tokens), prompt_tokens, started, self.metrics)
        return Answer(generation, prompt_tokens, started, self.metrics)
