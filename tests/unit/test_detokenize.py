"""Incremental detokenization: the pieces add up to the whole text, and each step decodes a short tail."""

from __future__ import annotations

from model_backends.engines.detokenize import IncrementalDecoder

TEXT = "Договор — это соглашение двух или нескольких лиц."


def utf8_bytes(ids: list[int]) -> str:
    """A byte-level tokenizer: Cyrillic letters span two tokens, the dash three."""
    return bytes(ids).decode("utf-8", "replace")


def test_characters_split_over_tokens_come_out_whole() -> None:
    decoder = IncrementalDecoder(utf8_bytes)
    pieces = [decoder.push([byte]) for byte in TEXT.encode()]
    pieces.append(decoder.flush())
    assert "".join(pieces) == TEXT
    assert not any("\ufffd" in piece for piece in pieces)


def test_a_space_spelled_by_context_is_kept() -> None:
    # SentencePiece: a word token carries its leading space, dropped when it starts the decoded text.
    vocab = [" Договор", " аренды", " заключается", "."]

    def decode(ids: list[int]) -> str:
        return "".join(vocab[i] for i in ids).lstrip()

    decoder = IncrementalDecoder(decode)
    assert [decoder.push([i]) for i in range(4)] == ["Договор", " аренды", " заключается", "."]


def test_each_step_decodes_a_short_tail_not_the_whole_answer() -> None:
    decoded = 0

    def counting(ids: list[int]) -> str:
        nonlocal decoded
        decoded += len(ids)
        return utf8_bytes(ids)

    decoder = IncrementalDecoder(counting)
    text = "слово " * 400  # 4,800 byte tokens and no newline: TextIteratorStreamer would decode ~11.5 M
    out = "".join(decoder.push([byte]) for byte in text.encode()) + decoder.flush()
    assert out == text and decoded < 8 * len(text.encode())
