"""Which checkpoint tensor becomes which GGUF tensor, in what type, and the Q/K permutation.

Pure: the plan is made from the checkpoint's header (names, shapes, dtypes) before any weight is
read, so an unknown tensor or a wrong shape is refused up front. Names come from gguf's own
`TensorNameMap` for the llama architecture, the same table llama.cpp's converter uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import gguf
import numpy as np
import numpy.typing as npt

from model_backends.convert.hparams import ModelParams
from model_backends.errors import ConversionError

ARCH = gguf.MODEL_ARCH.LLAMA
_T = gguf.MODEL_TENSOR
_PER_LAYER = (_T.ATTN_NORM, _T.ATTN_Q, _T.ATTN_K, _T.ATTN_V, _T.ATTN_OUT, _T.FFN_NORM, _T.FFN_GATE, _T.FFN_UP,
              _T.FFN_DOWN)
_BIASED = (_T.ATTN_Q, _T.ATTN_K, _T.ATTN_V, _T.ATTN_OUT)  # attention_bias: true
_IGNORED = (_T.ATTN_ROT_EMBD,)  # rotary_emb.inv_freq: recomputed by every runtime
SUPPORTED_DTYPES = ("F32", "F16", "BF16")


@dataclass(frozen=True)
class SourceTensor:
    """One tensor as the checkpoint's header describes it (nothing loaded)."""

    name: str
    shard: str
    dtype: str  # safetensors spelling: F32, F16, BF16, ...
    shape: tuple[int, ...]


@dataclass(frozen=True)
class TensorPlan:
    gguf_name: str
    source: str | None  # None: generated here (llama3's rope_freqs)
    shape: tuple[int, ...]
    dtype: type[np.floating]  # np.float32 or np.float16
    permute_heads: int | None = None  # Q and K: heads to reorder for GGML's RoPE

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


def permute_for_ggml(weights: npt.NDArray[np.floating], n_head: int) -> npt.NDArray[np.floating]:
    """Reorder each head's rows from Hugging Face's rotate-half halves into GGML's interleaved pairs."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def prepare(plan: TensorPlan, array: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """The array as it goes into the file: permuted where RoPE needs it, in the planned type."""
    if plan.permute_heads is not None:
        array = permute_for_ggml(array, plan.permute_heads)
    return np.ascontiguousarray(array, dtype=plan.dtype)


def _out_dtype(ndim: int, float_type: str) -> type[np.floating]:
    """f16 output keeps 1-D tensors (norms, biases) in f32, as llama.cpp's converter does."""
    if float_type == "f32" or ndim == 1:
        return np.float32
    return np.float16


def _expected_shape(kind: gguf.MODEL_TENSOR, suffix: str, p: ModelParams, n_vocab: int) -> tuple[int, ...]:
    q, kv = p.n_head * p.head_dim, p.n_kv_head * p.head_dim
    weights = {
        _T.TOKEN_EMBD: (n_vocab, p.hidden_size), _T.OUTPUT: (n_vocab, p.hidden_size),
        _T.OUTPUT_NORM: (p.hidden_size,), _T.ATTN_NORM: (p.hidden_size,), _T.FFN_NORM: (p.hidden_size,),
        _T.ATTN_Q: (q, p.hidden_size), _T.ATTN_K: (kv, p.hidden_size), _T.ATTN_V: (kv, p.hidden_size),
        _T.ATTN_OUT: (p.hidden_size, q), _T.FFN_GATE: (p.ffn_size, p.hidden_size),
        _T.FFN_UP: (p.ffn_size, p.hidden_size), _T.FFN_DOWN: (p.hidden_size, p.ffn_size),
    }
    shape = weights[kind]
    return shape[:1] if suffix == ".bias" else shape


def plan_tensors(sources: Mapping[str, SourceTensor], params: ModelParams, float_type: str) -> list[TensorPlan]:
    """The GGUF tensors in checkpoint order; refuses unknown, missing or misshapen tensors."""
    names = gguf.get_tensor_name_map(ARCH, params.n_layers)
    allowed = set(gguf.MODEL_TENSORS[ARCH])
    embedding = sources.get("model.embed_tokens.weight")
    if embedding is None:
        raise ConversionError("the checkpoint has no model.embed_tokens.weight")
    n_vocab = embedding.shape[0]
    plans: list[TensorPlan] = []
    unknown: list[str] = []
    for source in sources.values():
        found = names.get_type_and_name(source.name, try_suffixes=(".weight", ".bias"))
        if found is None or found[0] not in allowed:
            unknown.append(source.name)
            continue
        kind, gguf_name = found
        if kind in _IGNORED or (kind is _T.OUTPUT and params.tied_embeddings):
            continue
        if kind not in _PER_LAYER + (_T.TOKEN_EMBD, _T.OUTPUT, _T.OUTPUT_NORM):
            unknown.append(source.name)
            continue
        if source.dtype not in SUPPORTED_DTYPES:
            raise ConversionError(
                f"tensor {source.name} is {source.dtype}; supported: {', '.join(SUPPORTED_DTYPES)} "
                "(convert a pre-quantized checkpoint from its full-precision weights)"
            )
        suffix = ".bias" if source.name.endswith(".bias") else ".weight"
        if suffix == ".bias" and kind not in _BIASED:
            unknown.append(source.name)
            continue
        expected = _expected_shape(kind, suffix, params, n_vocab)
        if source.shape != expected:
            raise ConversionError(f"tensor {source.name} has shape {list(source.shape)}, config.json implies "
                                  f"{list(expected)}")
        heads = {_T.ATTN_Q: params.n_head, _T.ATTN_K: params.n_kv_head}.get(kind)
        plans.append(TensorPlan(gguf_name, source.name, source.shape,
                                _out_dtype(len(source.shape), float_type), heads))
    if unknown:
        listed = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise ConversionError(f"tensors the llama architecture has no place for: {listed}")
    _check_complete(plans, params)
    if params.rope_scaling.kind == "llama3":
        plans.insert(0, TensorPlan(gguf.TENSOR_NAMES[_T.ROPE_FREQS] + ".weight", None, (params.head_dim // 2,),
                                   np.float32))
    return plans


def _check_complete(plans: list[TensorPlan], params: ModelParams) -> None:
    have = {plan.gguf_name for plan in plans}
    required = [gguf.TENSOR_NAMES[_T.TOKEN_EMBD], gguf.TENSOR_NAMES[_T.OUTPUT_NORM]]
    if not params.tied_embeddings:
        required.append(gguf.TENSOR_NAMES[_T.OUTPUT])
    required += [gguf.TENSOR_NAMES[kind].format(bid=i) for i in range(params.n_layers) for kind in _PER_LAYER]
    missing = [name + ".weight" for name in required if name + ".weight" not in have]
    if missing:
        hint = " (lm_head.weight is missing: set tie_word_embeddings if the model shares it)" \
            if gguf.TENSOR_NAMES[_T.OUTPUT] + ".weight" in missing else ""
        raise ConversionError(f"the checkpoint lacks {', '.join(missing[:5])}{hint}")


def llama3_rope_factors(params: ModelParams) -> npt.NDArray[np.float32]:
    """Per-frequency divisors for Llama 3.1's RoPE scaling, stored as `rope_freqs` (llama.cpp's recipe)."""
    scaling = params.rope_scaling
    dim = params.head_dim
    freqs = 1.0 / (params.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    original = scaling.original_context or 8192
    low_wavelen = original / scaling.low_freq_factor
    high_wavelen = original / scaling.high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(scaling.factor)
        else:
            smooth = (original / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor)
            factors.append(1 / ((1 - smooth) / scaling.factor + smooth))
    return np.asarray(factors, dtype=np.float32)
