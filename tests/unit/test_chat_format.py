"""Chat formats: each known format renders exactly, a model's own template is used as is."""

from __future__ import annotations

import pytest

from model_backends.chat_format import ChatFormat, ChatFormatter
from model_backends.errors import ChatFormatError
from model_backends.tiny.tokenizer import CHAT_TEMPLATE

MESSAGES = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]


def test_chatml_rendering() -> None:
    assert ChatFormatter(ChatFormat.chatml).render(MESSAGES) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    )


def test_saiga_rendering() -> None:
    assert ChatFormatter(ChatFormat.saiga).render(MESSAGES) == "<s>system\nS</s><s>user\nQ</s><s>bot\n"


def test_mistral_rendering_puts_system_text_before_the_first_question() -> None:
    conversation = [*MESSAGES, {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q2"}]
    assert ChatFormatter(ChatFormat.mistral).render(conversation) == "<s>[INST] S\n\nQ [/INST]A</s>[INST] Q2 [/INST]"


def test_model_template_is_used_with_its_special_tokens() -> None:
    formatter = ChatFormatter(ChatFormat.auto, CHAT_TEMPLATE, "<s>", "<|im_end|>")
    assert formatter.chat_format is ChatFormat.template
    assert formatter.render(MESSAGES) == (
        "<s><|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    )


def test_auto_without_a_template_falls_back_to_chatml() -> None:
    assert ChatFormatter(ChatFormat.auto, None).chat_format is ChatFormat.chatml


def test_template_format_without_a_template_is_refused() -> None:
    with pytest.raises(ChatFormatError, match="no chat template"):
        ChatFormatter(ChatFormat.template, None)


def test_broken_template_is_a_clear_error() -> None:
    with pytest.raises(ChatFormatError, match="no system role"):
        ChatFormatter(ChatFormat.template, "{{ raise_exception('no system role') }}").render(MESSAGES)
