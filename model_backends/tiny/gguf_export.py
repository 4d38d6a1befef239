"""Write a Hugging Face Mistral/Llama checkpoint as a GGUF file that llama.cpp loads.

The same conversion llama.cpp's own converter does for this architecture: llama metadata, the
byte-level BPE vocabulary with its merges, and Q/K weights permuted from Hugging Face's
rotate-half RoPE layout into GGML's interleaved one. Tensors stay float32 so the copy is exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import MistralForCausalLM

from model_backends.tiny.tokenizer import BOS_TOKEN, CHAT_TEMPLATE, IM_END, PAD_TOKEN, SPECIAL_TOKENS


def _permute_for_ggml(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder each head's rows from [first half | second half] to interleaved pairs."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _vocabulary(tokenizer: Tokenizer) -> tuple[list[str], list[int], list[str]]:
    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    types = [
        gguf.TokenType.CONTROL if token in SPECIAL_TOKENS else gguf.TokenType.NORMAL for token in tokens
    ]
    merges = [" ".join(m) if isinstance(m, (list, tuple)) else m for m in _merges(tokenizer)]
    return tokens, [int(t) for t in types], merges


def _merges(tokenizer: Tokenizer) -> list:
    return json.loads(tokenizer.to_str())["model"]["merges"]


def write_gguf(model: MistralForCausalLM, tokenizer: Tokenizer, path: Path, name: str) -> None:
    """Write `model` and `tokenizer` to `path` (architecture `llama`, all tensors F32)."""
    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name(name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(_rope_theta(cfg))
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    tokens, types, merges = _vocabulary(tokenizer)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.token_to_id(BOS_TOKEN))
    writer.add_eos_token_id(tokenizer.token_to_id(IM_END))
    writer.add_pad_token_id(tokenizer.token_to_id(PAD_TOKEN))
    writer.add_add_bos_token(False)  # the chat template writes the BOS itself
    writer.add_chat_template(CHAT_TEMPLATE)

    for gguf_name, array in _tensors(model):
        writer.add_tensor(gguf_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _rope_theta(cfg) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))


def _tensors(model: MistralForCausalLM):
    cfg = model.config
    state = {k: v.detach().to(torch.float32).numpy() for k, v in model.state_dict().items()}
    yield "token_embd.weight", state["model.embed_tokens.weight"]
    yield "output_norm.weight", state["model.norm.weight"]
    yield "output.weight", state["lm_head.weight"]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        yield f"blk.{i}.attn_norm.weight", state[p + "input_layernorm.weight"]
        yield f"blk.{i}.attn_q.weight", _permute_for_ggml(state[p + "self_attn.q_proj.weight"], cfg.num_attention_heads)
        yield f"blk.{i}.attn_k.weight", _permute_for_ggml(state[p + "self_attn.k_proj.weight"], cfg.num_key_value_heads)
        yield f"blk.{i}.attn_v.weight", state[p + "self_attn.v_proj.weight"]
        yield f"blk.{i}.attn_output.weight", state[p + "self_attn.o_proj.weight"]
        yield f"blk.{i}.ffn_norm.weight", state[p + "post_attention_layernorm.weight"]
        yield f"blk.{i}.ffn_gate.weight", state[p + "mlp.gate_proj.weight"]
        yield f"blk.{i}.ffn_up.weight", state[p + "mlp.up_proj.weight"]
        yield f"blk.{i}.ffn_down.weight", state[p + "mlp.down_proj.weight"]
