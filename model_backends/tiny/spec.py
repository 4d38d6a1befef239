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


SHAPES: dict[str, TinySpec] = {
    TinyShape.tiny: TinySpec(),
    # Another shape for the converter: 4 query heads per KV head and another RoPE theta, with every
    # matrix row a multiple of 256 so that llama.cpp's k-quants apply; one layer keeps training short.
    TinyShape.gqa: TinySpec(
        hidden_size=256, intermediate_size=256, num_layers=1, num_heads=8, num_kv_heads=2,
        rope_theta=1_000_000.0, steps=150, learning_rate=4e-3,
    ),
}
