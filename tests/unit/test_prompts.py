"""The legal prompts: types, context headings, and the system prompt in OpenAI conversations."""

from __future__ import annotations

import pytest

from model_backends.chat_format import ChatFormat, ChatFormatter
from model_backends.prompts import (
    LEGAL_SYSTEM_PROMPT,
    SHORT_SYSTEM_PROMPT,
    PromptType,
    legal_messages,
    system_prompt,
    with_default_system_prompt,
)

MESSAGES = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]


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
