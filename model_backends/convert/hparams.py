"""Read a Mistral/Llama checkpoint's config.json into the hyperparameters a llama GGUF records.

Pure: `read_params` takes the parsed JSON, so every refusal (architecture, activation, RoPE
scaling) is decided before a byte is written. Both spellings of RoPE are read: transformers 5
keeps theta and scaling under `rope_parameters`, transformers 4 under `rope_theta`/`rope_scaling`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_backends.errors import ConversionError

# Hugging Face class -> the architecture llama.cpp runs it as (both are its `llama`).
SUPPORTED_ARCHITECTURES = {"MistralForCausalLM": "mistral", "LlamaForCausalLM": "llama"}
SUPPORTED_ROPE = ("default", "linear", "yarn", "llama3")


@dataclass(frozen=True)
class RopeScaling:
    """How positions are stretched beyond the training context; `default` means not at all."""

    kind: str = "default"
    factor: float = 1.0
    original_context: int | None = None
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    beta_fast: float | None = None  # yarn
    beta_slow: float | None = None  # yarn
    attention_factor: float | None = None  # yarn


@dataclass(frozen=True)
class ModelParams:
    architecture: str  # the Hugging Face class, e.g. MistralForCausalLM
    n_layers: int
    hidden_size: int
    ffn_size: int
    n_head: int
    n_kv_head: int
    head_dim: int
    context_length: int
    vocab_size: int
    rms_eps: float
    rope_theta: float
    rope_scaling: RopeScaling
    tied_embeddings: bool
    attention_bias: bool
    sliding_window: int | None

    def notes(self) -> list[str]:
        """What the operator should know about this conversion (nothing is refused here)."""
        notes = []
        if self.sliding_window is not None and self.sliding_window < self.context_length:
            notes.append(
                f"sliding_window {self.sliding_window} is not kept: llama.cpp attends to the whole context "
                "(the same as transformers up to that many tokens)"
            )
        return notes


def _int(config: Mapping[str, Any], key: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConversionError(f"config.json: {key} must be a positive integer, got {value!r}")
    return value


def _rope(config: Mapping[str, Any]) -> tuple[float, RopeScaling]:
    merged: dict[str, Any] = dict(config.get("rope_scaling") or {})
    merged.update(config.get("rope_parameters") or {})
    theta = float(merged.get("rope_theta", config.get("rope_theta", 10000.0)))
    kind = str(merged.get("rope_type", merged.get("type", "default")))
    if kind not in SUPPORTED_ROPE:
        raise ConversionError(
            f"unsupported RoPE scaling {kind!r} in config.json; supported: {', '.join(SUPPORTED_ROPE)}"
        )
    if kind == "default":
        return theta, RopeScaling()
    original = merged.get("original_max_position_embeddings")
    return theta, RopeScaling(
        kind=kind,
        factor=float(merged.get("factor", 1.0)),
        original_context=int(original) if original else None,
        low_freq_factor=float(merged.get("low_freq_factor", 1.0)),
        high_freq_factor=float(merged.get("high_freq_factor", 4.0)),
        beta_fast=_float_or_none(merged.get("beta_fast")),
        beta_slow=_float_or_none(merged.get("beta_slow")),
        attention_factor=_float_or_none(merged.get("attention_factor")),
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def read_params(config: Mapping[str, Any]) -> ModelParams:
    """The hyperparameters of a supported checkpoint; `ConversionError` says what is not supported."""
    architectures = config.get("architectures") or []
    architecture = next((a for a in architectures if a in SUPPORTED_ARCHITECTURES), None)
    if architecture is None:
        found = ", ".join(architectures) or f"model_type {config.get('model_type')!r}"
        raise ConversionError(
            f"unsupported architecture {found}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    activation = config.get("hidden_act", "silu")
    if activation != "silu":
        raise ConversionError(f"unsupported activation {activation!r}: llama.cpp's llama runs SiLU only")
    if config.get("mlp_bias"):
        raise ConversionError("unsupported mlp_bias: true (the llama architecture has no MLP biases)")
    hidden, n_head = _int(config, "hidden_size"), _int(config, "num_attention_heads")
    n_kv_head = int(config.get("num_key_value_heads") or n_head)
    if n_kv_head <= 0 or n_head % n_kv_head:
        raise ConversionError(f"config.json: {n_head} attention heads cannot share {n_kv_head} KV heads evenly")
    head_dim = int(config.get("head_dim") or hidden // n_head)
    if head_dim % 2:
        raise ConversionError(f"config.json: head_dim {head_dim} is odd; RoPE rotates pairs")
    theta, scaling = _rope(config)
    return ModelParams(
        architecture=architecture,
        n_layers=_int(config, "num_hidden_layers"),
        hidden_size=hidden,
        ffn_size=_int(config, "intermediate_size"),
        n_head=n_head,
        n_kv_head=n_kv_head,
        head_dim=head_dim,
        context_length=_int(config, "max_position_embeddings"),
        vocab_size=_int(config, "vocab_size"),
        rms_eps=float(config.get("rms_norm_eps", 1e-6)),
        rope_theta=theta,
        rope_scaling=scaling,
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        attention_bias=bool(config.get("attention_bias", False)),
        sliding_window=config.get("sliding_window"),
    )


def load_params(hf_dir: Path) -> ModelParams:
    path = hf_dir / "config.json"
    if not path.is_file():
        raise ConversionError(f"{hf_dir} has no config.json: not a Hugging Face checkpoint directory")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read {path}: {exc}") from exc
    return read_params(config)
