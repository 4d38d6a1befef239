"""Pure checks of an LLM's answers: an answer can fail with HTTP 200 (empty, wrong language, looping,
cut off, refused), and two colours' answers to the same request can drift apart.

Every function takes text and figures and returns small frozen results, so `bluegreen compare`,
the shadow phase and the rollout judge can all apply them and aggregate them into rates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sacrebleu.metrics.chrf import CHRF

_LETTER = re.compile(r"[^\W\d_]")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")

# Phrases with which a chat model declines to answer, lower-case, "ё" written "е", apostrophes straight.
REFUSAL_PHRASES: tuple[str, ...] = (
    "я не могу ответить", "не могу ответить на", "не могу помочь", "я не могу предоставить",
    "не могу дать", "не в состоянии ответить", "как языковая модель", "как модель ии", "как искусственный интеллект",
    "я всего лишь", "извините, но я не", "к сожалению, я не могу",
    "i can't answer", "i cannot answer", "i can't help", "i cannot help", "i can't provide", "i cannot provide",
    "i'm sorry, but", "i am sorry, but", "as an ai", "as a language model", "i'm unable to", "i am unable to",
    "i won't be able to",
)


CHECK_NAMES = ("empty", "wrong_language", "repetitive", "truncated", "refusal")  # the CheckRates fields too


@dataclass(frozen=True)
class CheckLimits:
    """Where a figure turns into a failed check for one answer."""

    min_cyrillic_share: float = 0.6  # Russian legal text quotes some Latin (GDPR, IP, URLs), never most of it
    min_letters_for_language: int = 12  # too few letters say nothing about the language
    repetition_ngram: int = 3
    max_repeated_ngram_share: float = 0.5
    min_ngrams_for_repetition: int = 6


@dataclass(frozen=True)
class AnswerChecks:
    """What one answer's text and finish reason say about it."""

    chars: int
    empty: bool
    cyrillic_share: float | None  # share of Cyrillic among the letters; None when there are none
    wrong_language: bool
    repeated_ngram_share: float
    repetitive: bool
    truncated: bool
    refusal: str | None  # the refusal phrase found, if any

    @property
    def failures(self) -> tuple[str, ...]:  # names from CHECK_NAMES
        """Names of the failed checks, for reports and counters."""
        found = {"empty": self.empty, "wrong_language": self.wrong_language, "repetitive": self.repetitive,
                 "truncated": self.truncated, "refusal": self.refusal is not None}
        return tuple(name for name, failed in found.items() if failed)


def is_empty(text: str) -> bool:
    return not text.strip()


def cyrillic_share(text: str) -> float | None:
    """Share of Cyrillic letters among all letters (digits and punctuation do not count)."""
    letters = _LETTER.findall(text)
    if not letters:
        return None
    return sum(1 for letter in letters if _CYRILLIC.match(letter)) / len(letters)


def repeated_ngram_share(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one: 0 for varied text, near 1 for a loop."""
    words = [word.lower() for word in _WORD.findall(text)]
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return (len(grams) - len(set(grams))) / len(grams)


def is_truncated(finish_reason: str | None) -> bool:
    """The model stopped at max_tokens rather than finishing its answer."""
    return finish_reason == "length"


def _normalised(text: str) -> str:
    text = text.lower().replace("ё", "е").replace("\u2019", "'").replace("\u02bc", "'")
    return _SPACES.sub(" ", text)


def refusal_phrase(text: str) -> str | None:
    """The first refusal phrase (Russian or English) the answer contains, or None."""
    normalised = _normalised(text)
    return next((phrase for phrase in REFUSAL_PHRASES if phrase in normalised), None)


def check_answer(text: str, finish_reason: str | None, limits: CheckLimits = CheckLimits()) -> AnswerChecks:
    """All per-answer checks; Russian is the expected language."""
    share = cyrillic_share(text)
    letters = len(_LETTER.findall(text))
    repetition = repeated_ngram_share(text, limits.repetition_ngram)
    ngrams = max(0, len(_WORD.findall(text)) - limits.repetition_ngram + 1)
    return AnswerChecks(
        chars=len(text.strip()),
        empty=is_empty(text),
        cyrillic_share=share,
        wrong_language=share is not None and letters >= limits.min_letters_for_language
        and share < limits.min_cyrillic_share,
        repeated_ngram_share=repetition,
        repetitive=ngrams >= limits.min_ngrams_for_repetition and repetition >= limits.max_repeated_ngram_share,
        truncated=is_truncated(finish_reason),
        refusal=refusal_phrase(text),
    )


_CHRF = CHRF()


def chrf(hypothesis: str, reference: str) -> float | None:
    """sacrebleu's sentence chrF (0–100); None when both are empty (nothing to compare)."""
    if is_empty(hypothesis) and is_empty(reference):
        return None
    return float(_CHRF.sentence_score(hypothesis.strip(), [reference.strip()]).score)


@dataclass(frozen=True)
class PairChecks:
    """Two colours' answers to the same request."""

    length_ratio: float | None  # green's length over blue's, in characters; None when blue's is empty
    chrf: float | None  # green against blue

    @classmethod
    def of(cls, blue: str, green: str) -> PairChecks:
        blue_chars, green_chars = len(blue.strip()), len(green.strip())
        return cls(length_ratio=green_chars / blue_chars if blue_chars else None, chrf=chrf(green, blue))


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (q in 0–100); None when empty."""
    if not sorted_values:
        return None
    return sorted_values[max(1, math.ceil(q / 100 * len(sorted_values))) - 1]


@dataclass(frozen=True)
class StreamTiming:
    """How an answer arrived: first chunk, gaps between chunks, time per generated token."""

    ttft_s: float | None
    gap_p95_s: float | None
    per_token_s: float | None


def stream_timing(chunk_offsets_s: Sequence[float], tokens: int | None) -> StreamTiming:
    """From the arrival times of the content chunks (seconds since the request was sent).

    Per-token latency is the time after the first chunk over the tokens after the first one,
    the figure that does not depend on the prompt's length.
    """
    if not chunk_offsets_s:
        return StreamTiming(None, None, None)
    gaps = sorted(later - earlier for earlier, later in zip(chunk_offsets_s, chunk_offsets_s[1:], strict=False))
    per_token = None
    if tokens is not None and tokens > 1 and len(chunk_offsets_s) > 1:
        per_token = (chunk_offsets_s[-1] - chunk_offsets_s[0]) / (tokens - 1)
    return StreamTiming(ttft_s=chunk_offsets_s[0], gap_p95_s=percentile(gaps, 95), per_token_s=per_token)


@dataclass(frozen=True)
class CheckRates:
    """Shares of answers failing each check, over many answers (what a verdict compares)."""

    answers: int
    empty: float
    wrong_language: float
    repetitive: float
    truncated: float
    refusal: float


def rates(checks: Iterable[AnswerChecks]) -> CheckRates:
    items = list(checks)
    count = len(items)

    def share(failed: int) -> float:
        return failed / count if count else 0.0

    return CheckRates(
        answers=count,
        empty=share(sum(c.empty for c in items)),
        wrong_language=share(sum(c.wrong_language for c in items)),
        repetitive=share(sum(c.repetitive for c in items)),
        truncated=share(sum(c.truncated for c in items)),
        refusal=share(sum(c.refusal is not None for c in items)),
    )
