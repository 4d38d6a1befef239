"""What the chat routes' OpenAPI entries say they answer: statuses, error bodies and stream events.

Kept apart from the handlers so the contract reads in one place; tests/e2e/test_openapi.py holds
the live programs to it with schemathesis.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bluegreen_common.http_errors import error_responses

RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "required": True,
                               "schema": {"type": "integer", "minimum": 0}}}

# What a chat route can answer besides 200. (A client that went away is logged as 499, which no
# client ever receives.)
CHAT_ERRORS: dict[int | str, dict[str, Any]] = error_responses({
    400: "the prompt is longer than the context window, the chat format cannot render the messages, "
         "or the body is not readable JSON",
    "4XX": "with the openai_upstream engine: the upstream refused the request, with its own status",
    413: "the body is over the size limit",
    422: "an invalid field (the message names it)",
    500: "an injected fault (drills only)",
    502: "the model failed while generating",
    503: "the model is not ready, or the queue is full",
    504: "no answer within the request timeout",
})
CHAT_ERRORS[503]["headers"] = RETRY_AFTER

_ERROR_EVENT = {"type": "object", "required": ["error"], "description": "a failure after the 200 was sent"}

LEGAL_EVENTS: list[dict[str, Any]] = [
    {"type": "object", "required": ["delta"], "properties": {"delta": {"type": "string"}}},
    {"type": "object", "required": ["done", "finish_reason", "usage"],
     "properties": {"done": {"const": True}, "finish_reason": {"type": "string"}, "usage": {"type": "object"}}},
    _ERROR_EVENT,
]

OPENAI_EVENTS: list[dict[str, Any]] = [
    {"type": "object", "required": ["id", "object", "created", "model", "choices"],
     "properties": {"object": {"const": "chat.completion.chunk"}, "choices": {"type": "array"},
                    "usage": {"type": "object"}}},
    _ERROR_EVENT,
]


def event_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A `text/event-stream` body: each event's `data` is one of `events` as JSON, the last one `[DONE]`."""
    data = {"anyOf": [
        {"const": "[DONE]"},
        {"type": "string", "contentMediaType": "application/json", "contentSchema": {"anyOf": events}},
    ]}
    return {"schema": {"type": "object", "required": ["data"], "properties": {"data": data}}}


def chat_responses(events: list[dict[str, Any]], answer: type[BaseModel] | None = None) -> dict[int | str, dict[str, Any]]:
    """A chat route's 200 is JSON (`answer`), or server-sent `events` with `stream: true`; then its errors."""
    ok: dict[str, Any] = {"content": {"text/event-stream": event_stream(events)}}
    if answer is not None:
        ok["model"] = answer
    return {200: ok, **CHAT_ERRORS}
