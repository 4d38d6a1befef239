"""Request and response bodies of the public API.

Numbers are strict (no "5" for 5) and unknown fields are refused on the legal route, so a
client's mistake comes back as a 422 naming the field instead of being silently reinterpreted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from model_backends.prompts import PromptType

MaxTokens = Annotated[StrictInt, Field(ge=1, le=4096, description="tokens to generate at most (1..4096)")]
Temperature = Annotated[float, Field(ge=0, le=2, strict=True, allow_inf_nan=False, description="0..2")]
TopP = Annotated[float, Field(gt=0, le=1, strict=True, allow_inf_nan=False, description="(0, 1]")]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int = 0


class LegalChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[str, Field(strict=True, description="the user's legal question")]
    context: Annotated[str | None, Field(strict=True, description="retrieved passages or a document")] = None
    prompt_type: PromptType = PromptType.legal
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: StrictBool = False
    ignore_eos: Annotated[StrictBool, Field(description="generate exactly max_tokens (benchmarks)")] = False
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


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions body; fields this server does not use are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] = 1
    ignore_eos: StrictBool = False  # vLLM's extension

    @field_validator("messages")
    @classmethod
    def _has_user_message(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" and m.text().strip() for m in messages):
            raise ValueError("needs at least one non-empty user message")
        return messages

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI-style error envelope, so SDK clients surface the message as is."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
