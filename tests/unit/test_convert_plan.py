"""The converter's pure decisions: what config.json means, which tokenizers and tensors it accepts."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from model_backends.convert.hparams import RopeScaling, read_params
from model_backends.convert.outtypes import OutType
from model_backends.convert.quantize import parse_tensor_line
from model_backends.convert.tensors import SourceTensor, permute_for_ggml, plan_tensors
from model_backends.convert.vocab import GPT2_REGEX, LLAMA3_REGEX, TEKKEN_REGEX, pre_tokenizer_name, token_table
from model_backends.errors import ConversionError

CONFIG = {
    "architectures": ["MistralForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "vocab_size": 10,
    "rms_norm_eps": 1e-5, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6},
}


def test_transformers_4_and_5_spellings_of_rope_read_alike() -> None:
    v5 = read_params({**CONFIG, "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5}})
    v4 = read_params({**{k: v for k, v in CONFIG.items() if k != "rope_parameters"},
                      "rope_theta": 5e5, "rope_scaling": {"type": "linear", "factor": 2.0}})
    assert v4 == v5 and v5.rope_theta == 5e5 and v5.rope_scaling == RopeScaling("linear", 2.0)
    params = read_params(CONFIG)
    assert (params.head_dim, params.n_kv_head, params.rope_theta, params.tied_embeddings) == (16, 2, 1e6, False)
    assert read_params({**CONFIG, "head_dim": 32}).head_dim == 32


@pytest.mark.parametrize("change, message", [
    ({"architectures": ["Qwen2ForCausalLM"]}, "unsupported architecture Qwen2ForCausalLM"),
    ({"hidden_act": "gelu"}, "unsupported activation 'gelu'"),
    ({"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}, "unsupported RoPE scaling 'dynamic'"),
    ({"num_key_value_heads": 3}, "cannot share 3 KV heads"),
    ({"hidden_size": None}, "hidden_size must be a positive integer"),
])
def test_unsupported_configs_are_refused_with_the_reason(change, message) -> None:
    with pytest.raises(ConversionError, match=message):
        read_params({**CONFIG, **change})


def _tokenizer(pre: object, **model: object) -> dict:
    return {"model": {"type": "BPE", "vocab": {}, **model}, "normalizer": None, "pre_tokenizer": pre,
            "decoder": {"type": "ByteLevel"}}


def _split(regex: str) -> dict:
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}


def test_pre_tokenizers_llama_cpp_implements_are_named() -> None:
    assert pre_tokenizer_name(_tokenizer({"type": "ByteLevel", "add_prefix_space": False, "use_regex": True})) == "gpt-2"
    assert pre_tokenizer_name(_tokenizer(_split(GPT2_REGEX))) == "gpt-2"
    assert pre_tokenizer_name(_tokenizer(_split(LLAMA3_REGEX))) == "llama-bpe"
    assert pre_tokenizer_name(_tokenizer(_split(TEKKEN_REGEX))) == "tekken"


@pytest.mark.parametrize("tokenizer, message", [
    (_tokenizer(_split(r"\p{L}+|\s+")), "is not one llama.cpp implements"),
    (_tokenizer({"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}), "is not one llama.cpp"),
    (_tokenizer(None, byte_fallback=True), "SentencePiece-style"),
    ({**_tokenizer(None), "model": {"type": "WordPiece"}}, "model type 'WordPiece'"),
    ({**_tokenizer(None), "normalizer": {"type": "NFC"}}, "normalizer"),
])
def test_other_tokenizers_are_refused(tokenizer, message) -> None:
    with pytest.raises(ConversionError, match=message):
        pre_tokenizer_name(tokenizer)


def test_token_table_marks_special_tokens_and_pads_to_the_embedding() -> None:
    tokenizer = {"model": {"vocab": {"<s>": 0, "a": 1, "b": 2}},
                 "added_tokens": [{"id": 0, "content": "<s>", "special": True},
                                  {"id": 3, "content": "<tool>", "special": False}]}
    tokens, types = token_table(tokenizer, 5)
    assert tokens == ["<s>", "a", "b", "<tool>", "[PAD4]"]
    t = gguf.TokenType
    assert types == [t.CONTROL, t.NORMAL, t.NORMAL, t.USER_DEFINED, t.UNUSED]
    with pytest.raises(ConversionError, match="embedding has only 3 rows"):
        token_table(tokenizer, 3)


def _sources(params_config: dict, drop: tuple[str, ...] = (), **shapes: tuple[int, ...]) -> dict[str, SourceTensor]:
    h, f, q, kv = 64, 128, 64, 32
    names = {
        "model.embed_tokens.weight": (10, h), "model.norm.weight": (h,), "lm_head.weight": (10, h),
        "model.layers.0.input_layernorm.weight": (h,), "model.layers.0.post_attention_layernorm.weight": (h,),
        "model.layers.0.self_attn.q_proj.weight": (q, h), "model.layers.0.self_attn.k_proj.weight": (kv, h),
        "model.layers.0.self_attn.v_proj.weight": (kv, h), "model.layers.0.self_attn.o_proj.weight": (h, q),
        "model.layers.0.mlp.gate_proj.weight": (f, h), "model.layers.0.mlp.up_proj.weight": (f, h),
        "model.layers.0.mlp.down_proj.weight": (h, f), **shapes,
    }
    return {n: SourceTensor(n, "model.safetensors", "BF16", s) for n, s in names.items() if n not in drop}


def test_plan_maps_names_permutes_q_and_k_and_keeps_norms_in_f32() -> None:
    plans = {p.gguf_name: p for p in plan_tensors(_sources(CONFIG), read_params(CONFIG), "f16")}
    assert len(plans) == 12 and plans["output.weight"].source == "lm_head.weight"
    assert (plans["blk.0.attn_q.weight"].permute_heads, plans["blk.0.attn_k.weight"].permute_heads) == (4, 2)
    assert plans["blk.0.attn_v.weight"].permute_heads is None
    assert plans["blk.0.attn_norm.weight"].dtype is np.float32 and plans["token_embd.weight"].dtype is np.float16
    assert plans["token_embd.weight"].nbytes == 10 * 64 * 2


def test_plan_follows_tied_embeddings_and_llama3_rope() -> None:
    tied = {**CONFIG, "tie_word_embeddings": True}
    names = [p.gguf_name for p in plan_tensors(_sources(tied, drop=("lm_head.weight",)), read_params(tied), "f32")]
    assert "output.weight" not in names
    llama3 = {**CONFIG, "rope_parameters": {"rope_type": "llama3", "factor": 8.0, "rope_theta": 5e5,
                                            "original_max_position_embeddings": 64}}
    first = plan_tensors(_sources(llama3), read_params(llama3), "f16")[0]
    assert (first.gguf_name, first.source, first.shape) == ("rope_freqs.weight", None, (8,))


@pytest.mark.parametrize("sources, message", [
    (_sources(CONFIG, **{"model.layers.0.mlp.experts.0.w1.weight": (128, 64)}), "has no place for"),
    (_sources(CONFIG, drop=("lm_head.weight",)), "lacks output.weight .*tie_word_embeddings"),
    (_sources(CONFIG, **{"model.layers.0.self_attn.k_proj.weight": (64, 64)}), "config.json implies"),
    (_sources(CONFIG, **{"model.layers.0.input_layernorm.bias": (64,)}), "has no place for"),
])
def test_plan_refuses_what_llama_cannot_hold(sources, message) -> None:
    with pytest.raises(ConversionError, match=message):
        plan_tensors(sources, read_params(CONFIG), "f16")


def test_permutation_interleaves_each_heads_halves() -> None:
    rows = np.arange(8, dtype=np.float32).reshape(8, 1)  # two heads of four rows: [x0 x1 | y0 y1] each
    assert permute_for_ggml(rows, 2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_quantizer_log_lines_and_file_types() -> None:
    line = "[   3/  12]                  blk.0.attn_q.weight - [  256,   256,     1,     1], type =    f16, "
    assert parse_tensor_line(line) == (3, 12, "blk.0.attn_q.weight")
    assert parse_tensor_line("llama_model_quantize_impl: model size = 2.70 MiB") is None
    assert (OutType.q4_k_m.file_type, OutType.f16.file_type) == (15, 1)
    assert OutType.q8_0.quantized and not OutType.f32.quantized and OutType.q8_0.float_type == "f16"
