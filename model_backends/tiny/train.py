"""Build and briefly train a small Mistral-architecture causal LM on the legal corpus."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from tokenizers import Tokenizer
from transformers import MistralConfig, MistralForCausalLM

from model_backends.chat_format import render_template
from model_backends.prompts import PromptType, legal_messages
from model_backends.tiny.corpus import QAPair
from model_backends.tiny.spec import TinySpec
from model_backends.tiny.tokenizer import BOS_TOKEN, CHAT_TEMPLATE, IM_END, PAD_TOKEN

__all__ = ["TinySpec", "model_config", "train_model"]


def model_config(spec: TinySpec, tokenizer: Tokenizer) -> MistralConfig:
    return MistralConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        head_dim=spec.attention_head_dim,
        max_position_embeddings=spec.context_length,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta},
        sliding_window=None,
        tie_word_embeddings=spec.tie_embeddings,
        bos_token_id=tokenizer.token_to_id(BOS_TOKEN),
        eos_token_id=tokenizer.token_to_id(IM_END),
        pad_token_id=tokenizer.token_to_id(PAD_TOKEN),
    )


def _training_example(pair: QAPair, prompt_type: PromptType, tokenizer: Tokenizer, limit: int) -> tuple[list[int], list[int]]:
    """Token ids of one rendered chat and its labels: loss only on the answer and its end token."""
    prompt = render_template(CHAT_TEMPLATE, legal_messages(pair.question, prompt_type), BOS_TOKEN, IM_END)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False).ids
    answer_ids = tokenizer.encode(pair.answer + IM_END, add_special_tokens=False).ids
    ids = (prompt_ids + answer_ids)[:limit]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:limit]
    return ids, labels


def train_model(
    spec: TinySpec,
    tokenizer: Tokenizer,
    pairs: list[QAPair],
    on_step: Callable[[int, float], None] = lambda step, loss: None,
) -> MistralForCausalLM:
    """Train with a fixed seed on one thread so that the same inputs give the same weights."""
    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = MistralForCausalLM(model_config(spec, tokenizer))
        prompt_types = list(PromptType)
        examples = [
            _training_example(pair, prompt_types[i % len(prompt_types)], tokenizer, spec.max_train_tokens)
            for i, pair in enumerate(pairs)
        ]
        pad_id = tokenizer.token_to_id(PAD_TOKEN)
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
        model.train()
        for step in range(spec.steps):
            batch = rng.sample(examples, spec.batch_size)
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            on_step(step, loss.item())
        model.eval()
        return model
    finally:
        torch.set_num_threads(threads)
