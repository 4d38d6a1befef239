"""Request and response bodies of the public API.

Numbers are strict (no "5" for 5) and unknown fields are refused on the legal route, so a
client's mistake comes back as a 422 naming the field instead of being silently reinterpreted.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    field_validator,
)

from model_backends.prompts import PromptType


def _whole_number(value: object) -> object:
    """JSON Schema's integer is any number without a fraction: 5.0 counts; "5" and true do not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


MaxTokens = Annotated[StrictInt, Field(ge=1, le=4096, description="tokens to generate at most (1..4096)"),
                      BeforeValidator(_whole_number)]
Temperature = Annotated[float, Field(ge=0, le=2, strict=True, allow_inf_nan=False, description="0..2")]
TopP = Annotated[float, Field(gt=0, le=1, strict=True, allow_inf_nan=False, description="(0, 1]")]


def _stop_kind(value: object) -> str | None:
    """Picks the one branch a `stop` value is checked against, so its 422 names one problem."""
    return "text" if isinstance(value, str) else "list" if isinstance(value, list) else None


StopText = Annotated[StrictStr, Field(min_length=1)]
Stop = Annotated[
    Annotated[StopText, Tag("text")] | Annotated[list[StopText], Field(max_length=4), Tag("list")],
    Discriminator(_stop_kind, custom_error_type="stop_type",
                  custom_error_message="must be a string or a list of up to 4 strings"),
    Field(description="the answer ends before the first of these sequences (a string, or up to 4 non-empty strings)"),
]


# "Not blank" as a JSON Schema pattern: one character that is whitespace neither to Python's
# `str.isspace` nor to ECMAScript's `\s`, so every schema validator agrees with the server.
NOT_BLANK = r"[^\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_NOT_BLANK = re.compile(NOT_BLANK)
NonBlank = Annotated[str, Field(strict=True, json_schema_extra={"pattern": NOT_BLANK})]


def is_blank(text: str) -> bool:
    return _NOT_BLANK.search(text) is None


def _not_blank(value: str) -> str:
    if is_blank(value):
        raise ValueError("must not be empty or only whitespace")
    return value


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int = 0


class LegalChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[NonBlank, Field(description="the user's legal question (not blank)")]
    context: Annotated[str | None, Field(strict=True, description="retrieved passages or a document")] = None
    prompt_type: PromptType = PromptType.legal
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: StrictBool = False
    ignore_eos: Annotated[StrictBool, Field(description="generate exactly max_tokens (benchmarks)")] = False
    stop: Stop | None = None
    session_id: Annotated[str | None, Field(strict=True, max_length=256)] = None

    _question_not_blank = field_validator("question")(_not_blank)


class LegalChatResponse(BaseModel):
    answer: str
    model: str
    engine: str
    prompt_type: PromptType
    finish_reason: str
    usage: Usage
    time_s: float


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


# The messages' rule as JSON Schema `contains`: at least one user message with non-blank text.
_A_USER_QUESTION: dict[str, Any] = {
    "type": "object", "required": ["role", "content"],
    "properties": {
        "role": {"const": "user"},
        "content": {"anyOf": [
            {"type": "string", "pattern": NOT_BLANK},
            {"type": "array", "contains": {"type": "object", "required": ["text"],
                                           "properties": {"text": {"type": "string", "pattern": NOT_BLANK}}}},
        ]},
    },
}


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions body; fields this server does not use are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: Annotated[list[ChatMessage], Field(
        min_length=1, description="at least one user message with non-blank text",
        json_schema_extra={"contains": _A_USER_QUESTION},
    )]
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] = 1
    stop: Stop | None = None
    ignore_eos: StrictBool = False  # vLLM's extension

    @field_validator("messages")
    @classmethod
    def _has_user_message(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" and not is_blank(m.text()) for m in messages):
            raise ValueError("needs at least one non-empty user message")
        return messages

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    """The OpenAI chat-completion answer (documents `POST /v1/chat/completions`'s JSON 200)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    """`GET /v1/models`: the one model this backend serves (empty while none is loaded)."""

    object: Literal["list"]
    data: list[ModelCard]
