"""What every engine offers the service: load, count prompt tokens, stream a completion.

Engines are synchronous and single-threaded by design (llama.cpp contexts are not thread-safe);
the service runs them on one worker thread and passes a `threading.Event` to stop them early.
"""

from __future__ import annotations

import codecs
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator

from model_backends.chat_format import ChatFormat, ChatFormatter, Messages


class EngineError(RuntimeError):
    """The engine cannot load or run; the message says what to change."""


class EngineUnavailable(EngineError):
    """A dependency or device the engine needs is missing (e.g. CUDA for 8-bit)."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float
    top_p: float
    ignore_eos: bool = False  # generate exactly max_tokens (benchmarks, long-generation drills)


@dataclass(frozen=True)
class Piece:
    """A slice of the answer: new text and how many tokens produced it.

    The last piece of a generation carries `finish_reason` ("stop", "length" or "cancelled").
    """

    text: str = ""
    tokens: int = 0
    finish_reason: str | None = None


@dataclass
class EngineInfo:
    engine: str
    model: str
    context_window: int | None
    chat_format: str
    details: dict[str, object] = field(default_factory=dict)


class Engine(ABC):
    """A loaded model that turns chat messages into streamed text."""

    name: str = "engine"

    @abstractmethod
    def load(self) -> None:
        """Load weights; raise `EngineError` with a clear message when that is impossible."""

    @abstractmethod
    def info(self) -> EngineInfo: ...

    @abstractmethod
    def prompt_tokens(self, messages: Messages) -> int | None:
        """Tokens the rendered prompt takes, or None where the engine cannot know (upstreams)."""

    @abstractmethod
    def stream(self, messages: Messages, params: SamplingParams, cancel: threading.Event) -> Iterator[Piece]:
        """Yield pieces of the answer; stop soon after `cancel` is set."""

    def close(self) -> None:
        """Release the model's memory."""


class LocalEngine(Engine):
    """An engine that renders the prompt itself and counts tokens exactly."""

    def __init__(self, chat_format: ChatFormat) -> None:
        self._chat_format = chat_format
        self._formatter: ChatFormatter | None = None

    def _set_formatter(self, template: str | None, bos_token: str, eos_token: str) -> None:
        self._formatter = ChatFormatter(self._chat_format, template, bos_token, eos_token)

    def render(self, messages: Messages) -> str:
        if self._formatter is None:
            raise EngineError("engine is not loaded")
        return self._formatter.render(messages)

    @property
    def chat_format_name(self) -> str:
        return self._formatter.chat_format.value if self._formatter else self._chat_format.value


class Utf8Pieces:
    """Turns token bytes into text without splitting a multi-byte character across pieces."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class EngineRequestError(EngineError):
    """The request itself was refused by the engine (e.g. an upstream's 4xx): the client's to fix."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
