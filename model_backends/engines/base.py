"""What every engine offers the service: load, prepare a prompt, stream a completion.

Engines are synchronous and single-threaded by design (llama.cpp contexts are not thread-safe);
the service runs them on one worker thread and passes a `threading.Event` to stop them early.
A prompt is prepared (rendered and tokenized) once: the service counts its tokens against the
context window, and the engine generates from the same tokens.
"""

from __future__ import annotations

import codecs
import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from model_backends.chat_format import ChatFormat, ChatFormatter, Messages
from model_backends.errors import EngineError
from model_backends.stops import StopMatcher


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float
    top_p: float
    ignore_eos: bool = False  # generate exactly max_tokens (benchmarks, long-generation drills)
    stop: tuple[str, ...] = ()  # the answer ends before the first of these (not included)


@dataclass(frozen=True)
class Prompt:
    """A request's prompt, prepared once by the engine that will run it.

    Local engines carry the token ids, so the context-window check and the generation share one
    tokenization; an upstream renders and counts on its own side and carries only the messages.
    """

    messages: Messages
    token_ids: Sequence[int] | None = None

    @property
    def token_count(self) -> int | None:
        return None if self.token_ids is None else len(self.token_ids)


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
    def prepare(self, messages: Messages) -> Prompt:
        """Render (and, where the engine can, tokenize) the prompt; `ChatFormatError` when it cannot."""

    @abstractmethod
    def stream(self, prompt: Prompt, params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        """Yield pieces of the answer to a prompt from `prepare`; stop soon after `cancel` is set."""

    def close(self) -> None:  # noqa: B027 (optional hook: engines holding no memory keep this no-op)
        """Release the model's memory."""

    def weights_bytes(self) -> int | None:
        """Memory the loaded weights take (on the GPU when they are there); None where unknown."""
        return None


class LocalEngine(Engine):
    """An engine that renders and tokenizes the prompt itself, and applies stop sequences itself."""

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

    @abstractmethod
    def _tokenize(self, text: str) -> list[int]:
        """Token ids of the rendered prompt (special tokens parsed, no BOS added: the template has it)."""

    @abstractmethod
    def _generate(self, token_ids: Sequence[int], params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        """Yield pieces of the answer to these prompt tokens, ignoring `params.stop`."""

    def prepare(self, messages: Messages) -> Prompt:
        return Prompt(messages, self._tokenize(self.render(messages)))

    def stream(self, prompt: Prompt, params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        if prompt.token_ids is None:
            raise EngineError("the prompt carries no tokens: prepare it with this engine first")
        pieces = self._generate(prompt.token_ids, params, cancel)
        return stop_at_sequences(pieces, params.stop) if params.stop else pieces


def stop_at_sequences(pieces: Generator[Piece, None, None], stops: Sequence[str]) -> Generator[Piece, None, None]:
    """End a generation at the first stop sequence, with finish_reason "stop" and without the
    sequence; closing the inner generation there stops the model from producing more."""
    matcher = StopMatcher(stops)
    with contextlib.closing(pieces):
        for piece in pieces:
            text = matcher.feed(piece.text)
            if matcher.stopped:
                yield Piece(text, piece.tokens, "stop")
                return
            if piece.finish_reason is not None:
                text += matcher.flush()
            yield Piece(text, piece.tokens, piece.finish_reason)
    if held := matcher.flush():  # the generation ended without a last piece: the held text is answer
        yield Piece(held)


class Utf8Pieces:
    """Turns token bytes into text without splitting a multi-byte character across pieces."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)
