"""Render chat messages into the one prompt string a local model reads.

A model's own chat template (from its tokenizer config or GGUF metadata) is the default; the
explicit formats cover weights that ship without one (older Saiga GGUF files do).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from model_backends.errors import ChatFormatError

Messages = list[dict[str, str]]


class ChatFormat(StrEnum):
    """How messages become a prompt: `auto` takes the model's template, else ChatML."""

    auto = "auto"
    template = "template"
    chatml = "chatml"
    saiga = "saiga"
    mistral = "mistral"


def _raise(message: str) -> None:
    raise ChatFormatError(message)


@lru_cache(maxsize=8)
def _compile(template: str) -> Any:
    # Same settings Hugging Face uses, so a template renders here exactly as in transformers.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def render_template(template: str, messages: Messages, bos_token: str = "", eos_token: str = "") -> str:
    """Render a Jinja2 chat template the way transformers' `apply_chat_template` does."""
    try:
        return str(_compile(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
        ))
    except TemplateError as exc:
        raise ChatFormatError(f"chat template failed: {exc}") from exc


def render_chatml(messages: Messages) -> str:
    """`<|im_start|>role\\ncontent<|im_end|>` per message, then the assistant's turn."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def render_saiga(messages: Messages) -> str:
    """Saiga's format: `<s>role\\ncontent</s>` per message, the answer follows `<s>bot\\n`."""
    roles = {"assistant": "bot"}
    turns = "".join(f"<s>{roles.get(m['role'], m['role'])}\n{m['content']}</s>" for m in messages)
    return turns + "<s>bot\n"


def render_mistral(messages: Messages) -> str:
    """Mistral's `[INST]` format; it has no system role, so the system text leads the first question."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    prompt = "<s>"
    pending_system = system
    for message in messages:
        if message["role"] == "user":
            content = f"{pending_system}\n\n{message['content']}" if pending_system else message["content"]
            pending_system = ""
            prompt += f"[INST] {content} [/INST]"
        elif message["role"] == "assistant":
            prompt += f"{message['content']}</s>"
    return prompt


class ChatFormatter:
    """Renders messages for one model: its template, or a named explicit format."""

    def __init__(
        self,
        chat_format: ChatFormat,
        template: str | None = None,
        bos_token: str = "",
        eos_token: str = "",
    ) -> None:
        if chat_format is ChatFormat.template and not template:
            raise ChatFormatError(
                "chat_format 'template' was chosen but the model has no chat template; "
                "pick one of chatml, saiga, mistral"
            )
        if chat_format is ChatFormat.auto:
            chat_format = ChatFormat.template if template else ChatFormat.chatml
        self.chat_format = chat_format
        self._template = template
        self._bos, self._eos = bos_token, eos_token

    def render(self, messages: Messages) -> str:
        """The full prompt, special tokens included: engines never add a BOS of their own."""
        if not messages:
            raise ChatFormatError("no messages to render")
        if self.chat_format is ChatFormat.template:
            assert self._template is not None
            return render_template(self._template, messages, self._bos, self._eos)
        renderers = {
            ChatFormat.chatml: render_chatml,
            ChatFormat.saiga: render_saiga,
            ChatFormat.mistral: render_mistral,
        }
        return renderers[self.chat_format](messages)
