"""A canned answerer for wiring checks without weights. Explicit opt-in (`allow_mock`), and
announced in `/ready` and every answer's `engine` field, so it never silently answers users."""

from __future__ import annotations

import threading
from collections.abc import Generator

from model_backends.chat_format import Messages
from model_backends.engines.base import Engine, EngineInfo, Piece, Prompt, SamplingParams, stop_at_sequences

CANNED_ANSWER = "Это тестовый ответ: модель не загружена, уточните в компетентных органах."


class MockEngine(Engine):
    name = "mock"

    def __init__(self, model_name: str) -> None:
        self._model_name = model_name

    def load(self) -> None:
        return None

    def info(self) -> EngineInfo:
        return EngineInfo(engine=self.name, model=self._model_name, context_window=None, chat_format="none",
                          details={"warning": "mock engine: canned answers, no model"})

    def prepare(self, messages: Messages) -> Prompt:
        return Prompt(messages, [0] * sum(len(m["content"].split()) for m in messages))  # a word is a "token"

    def stream(self, prompt: Prompt, params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        pieces = self._words(params, cancel)
        return stop_at_sequences(pieces, params.stop) if params.stop else pieces

    def _words(self, params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        words = CANNED_ANSWER.split(" ")[: params.max_tokens]
        for i, word in enumerate(words):
            if cancel.is_set():
                yield Piece(finish_reason="cancelled")
                return
            yield Piece(text=word if i == 0 else " " + word, tokens=1)
        yield Piece(finish_reason="stop" if len(words) == len(CANNED_ANSWER.split(" ")) else "length")
