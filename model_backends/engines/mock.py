"""A canned answerer for wiring checks without weights. Explicit opt-in (`allow_mock`), and
announced in `/ready` and every answer's `engine` field, so it never silently answers users."""

from __future__ import annotations

import threading
from typing import Iterator

from model_backends.chat_format import Messages
from model_backends.engines.base import Engine, EngineInfo, Piece, SamplingParams

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

    def prompt_tokens(self, messages: Messages) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def stream(self, messages: Messages, params: SamplingParams, cancel: threading.Event) -> Iterator[Piece]:
        words = CANNED_ANSWER.split(" ")[: params.max_tokens]
        for i, word in enumerate(words):
            if cancel.is_set():
                yield Piece(finish_reason="cancelled")
                return
            yield Piece(text=word if i == 0 else " " + word, tokens=1)
        yield Piece(finish_reason="stop" if len(words) == len(CANNED_ANSWER.split(" ")) else "length")
