"""The tiny models' shapes and training budgets (no torch here, so the CLI can list them cheaply)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class TinySpec:
    """Sizes and training budget; the defaults build in seconds on two CPU cores."""

    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 192
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    context_length: int = 2048
    max_train_tokens: int = 320
    steps: int = 280
    batch_size: int = 8
    learning_rate: float = 5e-3
    seed: int = 1234
    head_dim: int | None = None  # None: hidden_size // num_heads
    rope_theta: float = 10000.0
    tie_embeddings: bool = False

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads


class TinyShape(StrEnum):
    tiny = "tiny"
    gqa = "gqa"


class ModelSize(StrEnum):
    """`tiny` is the trained test model; the others are untrained, big enough to measure on a GPU."""

    tiny = "tiny"
    small = "small"
    medium = "medium"


class HalfDtype(StrEnum):
    """How the generated sizes store their weights (the trained tiny model stays float32)."""

    float16 = "float16"
    bfloat16 = "bfloat16"


SHAPES: dict[str, TinySpec] = {
    TinyShape.tiny: TinySpec(),
    # Another shape for the converter: 4 query heads per KV head and another RoPE theta, with every
    # matrix row a multiple of 256 so that llama.cpp's k-quants apply; one layer keeps training short.
    TinyShape.gqa: TinySpec(
        hidden_size=256, intermediate_size=256, num_layers=1, num_heads=8, num_kv_heads=2,
        rope_theta=1_000_000.0, steps=150, learning_rate=4e-3,
    ),
}

# Untrained Mistral shapes for GPU measurements (load time, memory per precision, tokens/s): random
# weights build in seconds, and memory and speed do not depend on what the weights say. Mistral's
# proportions (MLP 3.5x, 4 query heads per KV head, head_dim 64); the tiny tokenizer's 2048 tokens
# keep the unquantized embeddings small, so 8-bit and 4-bit shrink nearly the whole model.
SIZES: dict[str, TinySpec] = {
    ModelSize.small: TinySpec(hidden_size=768, intermediate_size=2688, num_layers=12, num_heads=12,
                              num_kv_heads=3),  # ~95 M parameters
    ModelSize.medium: TinySpec(hidden_size=1024, intermediate_size=3584, num_layers=16, num_heads=16,
                               num_kv_heads=4),  # ~222 M parameters
}


def parameter_count(spec: TinySpec, vocab_size: int | None = None) -> int:
    """Parameters of a Mistral model of this shape (no biases), without building it."""
    h, head_dim, vocab = spec.hidden_size, spec.attention_head_dim, vocab_size or spec.vocab_size
    attention = 2 * h * spec.num_heads * head_dim + 2 * h * spec.num_kv_heads * head_dim
    layer = attention + 3 * h * spec.intermediate_size + 2 * h  # q, k, v, o; gate, up, down; two norms
    embeddings = vocab * h * (1 if spec.tie_embeddings else 2)
    return spec.num_layers * layer + embeddings + h  # + the final norm
