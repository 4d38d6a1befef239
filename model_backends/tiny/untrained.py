"""An untrained checkpoint of any TinySpec shape, with the tiny tokenizer.

Seconds to make even at a gigabyte: the converter's memory benchmark uses it at sizes no test
could train, and its logits checks use it for shapes the trained models do not have (tied
embeddings, attention biases, RoPE scaling, Llama's class instead of Mistral's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from model_backends.tiny.corpus import plain_sentences
from model_backends.tiny.spec import TinySpec
from model_backends.tiny.tokenizer import save_hf_tokenizer, train_tokenizer
from model_backends.tiny.train import model_config

Architecture = Literal["mistral", "llama"]
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def save_untrained(
    out_dir: Path,
    spec: TinySpec,
    architecture: Architecture = "mistral",
    config_overrides: dict[str, Any] | None = None,
    dtype: str = "float32",
    max_shard_size: str = "2GB",
    split_regex: str | None = None,
) -> Path:
    """Random weights (seeded by `spec.seed`) of the spec's shape, saved as a Hugging Face checkpoint;
    `split_regex` gives the tokenizer another pre-tokenizer (see `train_tokenizer`)."""
    tokenizer = train_tokenizer(plain_sentences(), spec.vocab_size, split_regex)
    settings = {**model_config(spec, tokenizer).to_dict(), **(config_overrides or {})}
    for key in ("architectures", "model_type", "transformers_version"):
        settings.pop(key, None)
    torch.manual_seed(spec.seed)
    # Any: transformers types `.to()` through a wrapper that rejects a dtype
    model: Any = LlamaForCausalLM(LlamaConfig(**settings)) if architecture == "llama" \
        else MistralForCausalLM(MistralConfig(**settings))
    model.to(DTYPES[dtype]).save_pretrained(out_dir, max_shard_size=max_shard_size)
    save_hf_tokenizer(tokenizer, out_dir)
    return out_dir
