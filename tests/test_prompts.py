"""The rendered prompts, pinned to the exact string each format must produce."""

from __future__ import annotations

import pytest

from model_backends.chat_format import ChatFormat, ChatFormatError, ChatFormatter
from model_backends.prompts import (
    LEGAL_SYSTEM_PROMPT, SHORT_SYSTEM_PROMPT, PromptType, legal_messages, system_prompt, with_default_system_prompt,
)
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


@pytest.mark.parametrize(
    ("prompt_type", "heading"),
    [
        (PromptType.legal, "Дополнительный контекст:"),
        (PromptType.short, "Дополнительный контекст:"),
        (PromptType.detailed, "Дополнительный контекст:"),
        (PromptType.legal_analysis, "Контекст:"),
        (PromptType.document_review, "Документ:"),
    ],
)
def test_context_is_appended_under_its_heading(prompt_type: PromptType, heading: str) -> None:
    text = system_prompt(prompt_type, "  Статья 606 ГК РФ.  ")
    assert text.endswith(f"\n\n{heading}\nСтатья 606 ГК РФ.")


def test_legal_messages_with_the_short_prompt() -> None:
    assert legal_messages("  Как зарегистрировать ИП? ", PromptType.short) == [
        {"role": "system", "content": SHORT_SYSTEM_PROMPT},
        {"role": "user", "content": "Как зарегистрировать ИП?"},
    ]


def test_full_legal_prompt_in_chatml() -> None:
    rendered = ChatFormatter(ChatFormat.chatml).render(legal_messages("Статья 105 УК РФ"))
    assert rendered == f"<|im_start|>system\n{LEGAL_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nСтатья 105 УК РФ<|im_end|>\n<|im_start|>assistant\n"
    assert "юрист-консультант" in rendered


def test_openai_conversations_get_the_legal_prompt_only_when_they_bring_none() -> None:
    user_only = [{"role": "user", "content": "Q"}]
    assert with_default_system_prompt(user_only)[0] == {"role": "system", "content": LEGAL_SYSTEM_PROMPT}
    assert with_default_system_prompt(MESSAGES) == MESSAGES
