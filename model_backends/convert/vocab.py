"""Read a checkpoint's tokenizer.json into the vocabulary a GGUF carries, or refuse it.

Only tokenizers that llama.cpp reproduces exactly are accepted: byte-level BPE (GGUF model `gpt2`)
whose pre-tokenizer is one llama.cpp implements under a known name. The pre-tokenizer is
recognised from tokenizer.json itself (its split regex), so a tokenizer llama.cpp would split
differently is refused rather than converted into a model that reads text wrongly.
Special token ids, add-BOS/EOS flags, merges and the chat template come from gguf's own
`SpecialVocab`, which reads tokenizer_config.json, chat_template.jinja and config.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from model_backends.errors import ConversionError

GPT2_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)
# Mistral's Tekken (Mistral NeMo, Mistral Small 3 and so Vistral-24B).
TEKKEN_REGEX = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Split regex -> llama.cpp's name for the same pre-tokenizer (`tokenizer.ggml.pre`).
KNOWN_SPLITS = {GPT2_REGEX: "gpt-2", LLAMA3_REGEX: "llama-bpe", TEKKEN_REGEX: "tekken"}


@dataclass
class Vocabulary:
    """Everything under `tokenizer.ggml.*` and the chat template."""

    model: str  # GGUF tokenizer model: "gpt2" (byte-level BPE)
    pre: str  # llama.cpp's pre-tokenizer name
    tokens: list[str]
    types: list[int]
    special: gguf.SpecialVocab  # merges, special ids, add_bos/add_eos, chat template
    notes: list[str] = field(default_factory=list)

    def add_to(self, writer: gguf.GGUFWriter) -> None:
        writer.add_tokenizer_model(self.model)
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.types)
        self.special.add_to_gguf(writer, quiet=True)


def _describe(pre: Mapping[str, Any] | None) -> str:
    return json.dumps(pre, ensure_ascii=False)[:300] if pre else "none"


def _byte_level_ok(step: Mapping[str, Any], use_regex: bool) -> bool:
    return (step.get("type") == "ByteLevel" and not step.get("add_prefix_space", False)
            and bool(step.get("use_regex", True)) == use_regex)


def pre_tokenizer_name(tokenizer: Mapping[str, Any]) -> str:
    """llama.cpp's name for this tokenizer's pre-tokenizer; `ConversionError` for any other kind."""
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE":
        raise ConversionError(
            f"unsupported tokenizer: model type {model.get('type')!r}; only byte-level BPE is supported"
        )
    if model.get("byte_fallback"):
        raise ConversionError(
            "unsupported tokenizer: SentencePiece-style BPE (byte_fallback, '▁' for spaces); "
            "only byte-level BPE (GPT-2, Llama 3, Tekken) is supported"
        )
    if (tokenizer.get("decoder") or {}).get("type") != "ByteLevel":
        raise ConversionError("unsupported tokenizer: the decoder is not ByteLevel (not a byte-level BPE)")
    if tokenizer.get("normalizer") is not None:
        raise ConversionError(
            f"unsupported tokenizer: normalizer {_describe(tokenizer['normalizer'])}; llama.cpp applies none"
        )
    pre = tokenizer.get("pre_tokenizer") or {}
    if _byte_level_ok(pre, use_regex=True):
        return "gpt-2"
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if steps and len(steps) == 2 and _byte_level_ok(steps[1], use_regex=False):
        split = steps[0]
        regex = (split.get("pattern") or {}).get("Regex")
        if (split.get("type") == "Split" and split.get("behavior") == "Isolated" and not split.get("invert")
                and regex in KNOWN_SPLITS):
            return KNOWN_SPLITS[str(regex)]
    raise ConversionError(
        f"unsupported tokenizer: pre-tokenizer {_describe(pre)} is not one llama.cpp implements "
        f"(supported: {', '.join(sorted(set(KNOWN_SPLITS.values())))})"
    )


def token_table(tokenizer: Mapping[str, Any], n_vocab: int) -> tuple[list[str], list[int]]:
    """Tokens by id and their GGUF types, padded to the embedding's rows as llama.cpp's converter does."""
    texts: dict[int, str] = {}
    types = [int(gguf.TokenType.NORMAL)] * n_vocab
    added = tokenizer.get("added_tokens") or []
    entries: list[tuple[str, int, bool | None]] = [(text, int(i), None) for text, i in tokenizer["model"]["vocab"].items()]
    entries += [(t["content"], int(t["id"]), bool(t.get("special"))) for t in added]
    for text, token_id, special in entries:
        if token_id >= n_vocab:
            raise ConversionError(
                f"the tokenizer has token id {token_id} ({text!r}) but the model's embedding has only {n_vocab} rows"
            )
        texts[token_id] = text
        if special is not None:
            types[token_id] = int(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
    for token_id in range(n_vocab):
        if token_id not in texts:
            types[token_id] = int(gguf.TokenType.UNUSED)
    return [texts.get(i, f"[PAD{i}]") for i in range(n_vocab)], types


def read_vocabulary(hf_dir: Path, n_vocab: int) -> Vocabulary:
    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        other = " (only a SentencePiece tokenizer.model, which is not supported)" \
            if (hf_dir / "tokenizer.model").is_file() else ""
        raise ConversionError(f"unsupported tokenizer: {hf_dir} has no tokenizer.json{other}")
    try:
        tokenizer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read {path}: {exc}") from exc
    pre = pre_tokenizer_name(tokenizer)
    tokens, types = token_table(tokenizer, n_vocab)
    special = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=n_vocab)
    if not special.merges:
        raise ConversionError(f"unsupported tokenizer: {path} has no BPE merges")
    # Hugging Face adds a BOS only where the post-processor says so; say the same to llama.cpp.
    special.add_special_token.setdefault("bos", False)
    notes = [] if special.chat_template else ["no chat template: the engines will fall back to chatml"]
    return Vocabulary("gpt2", pre, tokens, types, special, notes)
