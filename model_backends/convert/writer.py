"""Write the llama GGUF with gguf's own writer, streaming tensor data one tensor at a time.

Tensor infos go into the header first (their shapes and types are known from the plan), then
each tensor is read from the checkpoint, prepared and appended, so the file is never assembled
in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import numpy.typing as npt

from model_backends.convert.hparams import ModelParams
from model_backends.convert.tensors import TensorPlan, prepare
from model_backends.convert.vocab import Vocabulary

ARCH_NAME = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA]


def add_hparams(writer: gguf.GGUFWriter, params: ModelParams, n_vocab: int) -> None:
    writer.add_context_length(params.context_length)
    writer.add_embedding_length(params.hidden_size)
    writer.add_block_count(params.n_layers)
    writer.add_feed_forward_length(params.ffn_size)
    writer.add_head_count(params.n_head)
    writer.add_head_count_kv(params.n_kv_head)
    writer.add_key_length(params.head_dim)
    writer.add_value_length(params.head_dim)
    writer.add_rope_dimension_count(params.head_dim)
    writer.add_layer_norm_rms_eps(params.rms_eps)
    writer.add_rope_freq_base(params.rope_theta)
    writer.add_vocab_size(n_vocab)
    scaling = params.rope_scaling
    if scaling.kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(scaling.factor)
    elif scaling.kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(scaling.factor)
        writer.add_rope_scaling_orig_ctx_len(scaling.original_context or params.context_length)
        if scaling.attention_factor is not None:
            writer.add_rope_scaling_yarn_attn_factor(scaling.attention_factor)
        if scaling.beta_fast is not None:
            writer.add_rope_scaling_yarn_beta_fast(scaling.beta_fast)
        if scaling.beta_slow is not None:
            writer.add_rope_scaling_yarn_beta_slow(scaling.beta_slow)


def write_gguf(
    path: Path,
    name: str,
    params: ModelParams,
    vocab: Vocabulary,
    plans: list[TensorPlan],
    read: Callable[[TensorPlan], npt.NDArray[np.floating]],
    file_type: int,
    on_tensor: Callable[[TensorPlan], None],
) -> None:
    """Write metadata, vocabulary and every planned tensor to `path` (overwritten)."""
    writer = gguf.GGUFWriter(str(path), arch=ARCH_NAME)
    try:
        writer.add_name(name)
        writer.add_file_type(file_type)
        add_hparams(writer, params, len(vocab.tokens))
        vocab.add_to(writer)
        for plan in plans:
            writer.add_tensor_info(plan.gguf_name, plan.shape, np.dtype(plan.dtype), plan.nbytes)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for plan in plans:
            writer.write_tensor_data(prepare(plan, read(plan)))
            on_tensor(plan)
    finally:
        writer.close()
