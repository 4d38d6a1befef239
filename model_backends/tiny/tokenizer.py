"""Train the tiny models' byte-level BPE tokenizer.

Byte-level BPE with GPT-2 pre-tokenization is the one tokenizer family that both transformers
and llama.cpp (`tokenizer.ggml.model = gpt2`, pre-tokenizer `gpt-2`) implement identically,
which is what makes the GGUF copy of the model faithful token for token.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

BOS_TOKEN = "<s>"
PAD_TOKEN = "</s>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # ends an assistant turn: the end-of-generation token
SPECIAL_TOKENS = [BOS_TOKEN, PAD_TOKEN, IM_START, IM_END]

# ChatML with a leading BOS: the template both engines read from the model files.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts: list[str], vocab_size: int, split_regex: str | None = None) -> Tokenizer:
    """A deterministic byte-level BPE over the corpus, special tokens first (ids 0..3).

    `split_regex` replaces GPT-2's pre-tokenizer with a split on that pattern before the byte-level
    mapping, as Llama 3's and Mistral's Tekken tokenizers do (for the converter's checks).
    """
    tokenizer = Tokenizer(models.BPE())
    if split_regex is None:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def save_hf_tokenizer(tokenizer: Tokenizer, out_dir: Path) -> None:
    """Save as a Hugging Face fast tokenizer with its special tokens and the chat template."""
    from transformers import PreTrainedTokenizerFast

    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=IM_END, pad_token=PAD_TOKEN
    )
    hf_tokenizer.chat_template = CHAT_TEMPLATE
    hf_tokenizer.save_pretrained(out_dir)
