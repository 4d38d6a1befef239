"""The legal assistant's system prompts and how a question becomes chat messages.

Kept apart from any model format: the same messages are rendered for Saiga, Vistral or an
upstream server by `chat_format`, so prompt wording changes in one place only.
"""

from __future__ import annotations

from enum import StrEnum


class PromptType(StrEnum):
    """Which system prompt frames the question."""

    legal = "legal"
    short = "short"
    detailed = "detailed"
    legal_analysis = "legal_analysis"
    document_review = "document_review"


LEGAL_SYSTEM_PROMPT = (
    "Ты - опытный юрист-консультант по российскому законодательству.\n"
    "Отвечай максимально подробно, точно и профессионально на русском языке.\n"
    "\n"
    "КРИТИЧЕСКИ ВАЖНО:\n"
    "- Используй только реально существующие законы РФ\n"
    "- Указывай точные номера статей\n"
    "- Не выдумывай сроки и процедуры\n"
    '- Если не знаешь - честно скажи "уточните в компетентных органах"'
)

SHORT_SYSTEM_PROMPT = "Ты юрист-консультант. Дай краткий ответ на русском языке."

DETAILED_SYSTEM_PROMPT = (
    "Ты опытный юрист-консультант по российскому законодательству.\n"
    "\n"
    "КРИТИЧЕСКИ ВАЖНО:\n"
    "- Используй только реальные законы РФ\n"
    "- Указывай точные номера статей\n"
    "- Давай развернутые ответы (1000-2000 слов)\n"
    "- Структурируй ответ с заголовками\n"
    "- Приводи практические примеры\n"
    "\n"
    "Формат ответа:\n"
    "1. Краткое резюме\n"
    "2. Детальное объяснение\n"
    "3. Релевантные статьи законов\n"
    "4. Практические рекомендации\n"
    "5. Важные замечания"
)

LEGAL_ANALYSIS_SYSTEM_PROMPT = (
    "Ты эксперт по юридическому анализу. Проведи детальный анализ:\n"
    "\n"
    "1. Правовая квалификация\n"
    "2. Применимые нормы права\n"
    "3. Судебная практика\n"
    "4. Риски и последствия\n"
    "5. Рекомендации"
)

DOCUMENT_REVIEW_SYSTEM_PROMPT = (
    "Ты юрист, специализирующийся на проверке документов. Проанализируй:\n"
    "\n"
    "1. Соответствие законодательству\n"
    "2. Полнота существенных условий\n"
    "3. Потенциальные риски\n"
    "4. Рекомендации по улучшению"
)

_SYSTEM_PROMPTS: dict[PromptType, str] = {
    PromptType.legal: LEGAL_SYSTEM_PROMPT,
    PromptType.short: SHORT_SYSTEM_PROMPT,
    PromptType.detailed: DETAILED_SYSTEM_PROMPT,
    PromptType.legal_analysis: LEGAL_ANALYSIS_SYSTEM_PROMPT,
    PromptType.document_review: DOCUMENT_REVIEW_SYSTEM_PROMPT,
}

# How retrieved passages are introduced; a document under review is named as such.
_CONTEXT_HEADINGS: dict[PromptType, str] = {
    PromptType.legal: "Дополнительный контекст:",
    PromptType.short: "Дополнительный контекст:",
    PromptType.detailed: "Дополнительный контекст:",
    PromptType.legal_analysis: "Контекст:",
    PromptType.document_review: "Документ:",
}


def system_prompt(prompt_type: PromptType, context: str | None = None) -> str:
    """The system message for a prompt type, with the context appended when given."""
    text = _SYSTEM_PROMPTS[prompt_type]
    if context and context.strip():
        text += f"\n\n{_CONTEXT_HEADINGS[prompt_type]}\n{context.strip()}"
    return text


def legal_messages(
    question: str, prompt_type: PromptType = PromptType.legal, context: str | None = None
) -> list[dict[str, str]]:
    """Chat messages for one legal question: a system prompt and the user's question."""
    return [
        {"role": "system", "content": system_prompt(prompt_type, context)},
        {"role": "user", "content": question.strip()},
    ]


def with_default_system_prompt(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Give an OpenAI-style conversation the legal system prompt when it brings none."""
    if any(m["role"] == "system" for m in messages):
        return messages
    return [{"role": "system", "content": LEGAL_SYSTEM_PROMPT}, *messages]
