"""Fault injection for rollback drills: errors, added latency, hangs and bad answers, chosen per request.

A bad answer (`AnswerFault`) still comes with HTTP 200: the real generation runs (so its pace,
queueing and token counts stay real) and only its text is rewritten. That is how an LLM fails in
the wild, and what the answer checks and `bluegreen compare` must catch.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from enum import StrEnum

from model_backends.config import AnswerFault, FaultOptions
from model_backends.engines.base import Piece
from model_backends.scheduler import Generation


class FaultKind(StrEnum):
    none = "none"
    error = "error"
    hang = "hang"


def choose_fault(draw: float, error_rate: float, hang_rate: float) -> FaultKind:
    """Map a uniform draw in [0, 1) to a fault: errors take the first share, hangs the next."""
    if draw < error_rate:
        return FaultKind.error
    if draw < error_rate + hang_rate:
        return FaultKind.hang
    return FaultKind.none


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    latency_s: float
    answer: AnswerFault = AnswerFault.none


class FaultInjector:
    def __init__(self, options: FaultOptions) -> None:
        self.options = options
        self._random = random.Random(options.seed)
        self._seen = 0

    def decide(self) -> FaultDecision:
        self._seen += 1
        if self._seen <= self.options.after_requests:
            return FaultDecision(FaultKind.none, 0.0)
        kind = choose_fault(self._random.random(), self.options.error_rate, self.options.hang_rate)
        answer = AnswerFault.none
        # Drawn only when a bad answer is configured, so seeded error/hang drills keep their sequence.
        if kind is FaultKind.none and self.options.answer is not AnswerFault.none:
            if self._random.random() < self.options.answer_rate:
                answer = self.options.answer
        return FaultDecision(kind, self.options.latency_ms / 1000.0, answer)


# Fluent English legal prose: what a Russian model drifting into English looks like to a reader.
LATIN_TEXT = (
    "Under the civil code, a contract of sale obliges the seller to transfer the goods into the ownership "
    "of the buyer, and the buyer undertakes to accept the goods and to pay the agreed price. The parties "
    "may agree on the terms freely, unless the law requires otherwise. An employee dismissed by the employer "
    "is entitled to compensation for unused leave and to the wages owed on the last working day."
)
REPEATED_TOKEN = "право "


def _latin_words() -> Iterator[str]:
    return itertools.cycle(word + " " for word in LATIN_TEXT.split())


class BadAnswer:
    """A real generation whose text is rewritten into the chosen bad answer, piece by piece.

    Token counts follow the model (one Latin word or one repeated token per generated token), except
    for an empty answer, which reports none, and a repeated one, padded to `max_tokens`.
    """

    def __init__(self, generation: Generation, fault: AnswerFault, max_tokens: int) -> None:
        self._generation = generation
        self._fault = fault
        self._max_tokens = max_tokens
        self._words = _latin_words()

    def _text(self, tokens: int) -> str:
        if self._fault is AnswerFault.latin:
            return "".join(itertools.islice(self._words, tokens))
        if self._fault is AnswerFault.repeat:
            return REPEATED_TOKEN * tokens
        return ""

    async def pieces(self) -> AsyncIterator[Piece]:
        produced = 0
        async for piece in self._generation.pieces():
            if piece.finish_reason == "cancelled":
                yield Piece(finish_reason="cancelled")
                return
            tokens = 0 if self._fault is AnswerFault.empty else piece.tokens
            produced += tokens
            finish = None if self._fault is AnswerFault.repeat else piece.finish_reason
            yield Piece(self._text(tokens), tokens, finish)
        if self._fault is AnswerFault.repeat:
            rest = max(0, self._max_tokens - produced)
            yield Piece(self._text(rest), rest, "length")
