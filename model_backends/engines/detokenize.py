"""Incremental detokenization: the text each new token adds, decoding only a short tail.

transformers' TextIteratorStreamer decodes every token generated since the last newline on each new
token, which is quadratic in a long answer without newlines. Here each step decodes the tokens since
the previous emitted piece, starting one piece back so that a tokenizer that spells a leading space
by context (SentencePiece) or splits a character over byte tokens still comes out right.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

REPLACEMENT = "\ufffd"  # what decoding an incomplete UTF-8 sequence ends with: wait for the next token


class IncrementalDecoder:
    """Feed token ids; get back the text they complete. Pure apart from the decode function."""

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._tokens: list[int] = []
        self._prefix = 0  # start of the piece before the last emitted one: decoding context
        self._read = 0  # end of what has been emitted

    def push(self, token_ids: list[int]) -> str:
        self._tokens.extend(token_ids)
        before = self._decode(self._tokens[self._prefix:self._read])
        now = self._decode(self._tokens[self._prefix:])
        if len(now) <= len(before) or now.endswith(REPLACEMENT):
            return ""
        self._prefix, self._read = self._read, len(self._tokens)
        return now[len(before):]

    def flush(self) -> str:
        """Whatever is left at the end (an incomplete character comes out as its replacement)."""
        before = self._decode(self._tokens[self._prefix:self._read])
        now = self._decode(self._tokens[self._prefix:])
        self._prefix = self._read = len(self._tokens)
        return now[len(before):]


_END = object()


class TextPieces:
    """A `generate()` streamer (put/end, called from the generating thread) read as an iterator of text
    pieces by the serving thread; counts the generated tokens."""

    def __init__(self, decode: Callable[[list[int]], str], skip_prompt: bool = True) -> None:
        self._decoder = IncrementalDecoder(decode)
        self._prompt_pending = skip_prompt  # generate() first puts the whole prompt
        self._pieces: queue.Queue[object] = queue.Queue()
        self.generated = 0

    def put(self, value: Any) -> None:
        if self._prompt_pending:
            self._prompt_pending = False
            return
        ids = [int(i) for i in value.reshape(-1).tolist()]
        self.generated += len(ids)
        text = self._decoder.push(ids)
        if text:
            self._pieces.put(text)

    def end(self) -> None:
        tail = self._decoder.flush()
        if tail:
            self._pieces.put(tail)
        self._pieces.put(_END)

    def __iter__(self) -> Iterator[str]:
        while (piece := self._pieces.get()) is not _END:
            assert isinstance(piece, str)
            yield piece
