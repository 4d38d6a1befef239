"""One analytics line: what the proxy saw of a request (raw, `Seen`) made into a record (`AnalyticsRecord`).

The proxy hands over bytes and numbers only; parsing the request and the answer, hashing the user and
classifying the question happen here, in the writer's background task, so the hot path pays for none of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.openapi import PUBLIC_PREFIXES
from router.quality.compare import OPENAI_PATH, Api, parse_event

CHARS_PER_TOKEN = 3.0  # a rough figure for Russian text in a Mistral-family tokenizer; used only without `usage`
SOURCE_ROUTER = "router"  # the built-in plane saw the whole exchange
SOURCE_NGINX = "nginx"  # nginx's access log: no text, tokens or category


@dataclass(slots=True)
class Seen:
    """What the proxy knew of one request when it ended: raw, unparsed (slots, not frozen: made on the hot path)."""

    timestamp: float  # time.time() at the end
    request_id: str
    route: str
    colour: str | None  # None: the router answered itself (413, 429)
    status: int  # 499: the client went away first
    headers: list[tuple[bytes, bytes]]  # the request's (the user id in them is hashed here, never written)
    request_body: bytes
    answer: list[bytes] | None  # the answer's pieces as they went to the client
    response_time_s: float | None
    ttft_s: float | None


@dataclass(frozen=True)
class AnalyticsRecord:
    """The fields of one JSON line (`question`/`answer` only with `analytics.log_text`)."""

    timestamp: str
    request_id: str
    source: str
    colour: str | None
    model: str | None
    route: str
    status: int
    user: str | None
    tier: str | None
    question_length: int | None  # None: the source cannot know (nginx)
    answer_length: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_estimated: bool
    response_time_s: float | None
    ttft_s: float | None
    category: str | None
    question: str | None = None
    answer: str | None = None

    def to_json(self) -> str:
        fields = dict(self.__dict__)
        if fields["question"] is None and fields["answer"] is None:
            del fields["question"], fields["answer"]
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class RecordContext:
    """What turning a `Seen` into a record needs besides it."""

    salt: bytes
    log_text: bool
    classify: Callable[[str], str]
    user_header: bytes  # lower case
    tier_header: bytes
    tier_for: Callable[[str | None, str | None], str | None]  # the rate limiter's: header values → tier


@dataclass(frozen=True)
class AnswerFacts:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str | None


def hash_user(user: str, salt: bytes) -> str:
    """A keyed hash (HMAC-SHA256, 64 bits shown) of a user id: the same user gives the same value under
    one salt, and nobody without the salt can test a guessed id against it."""
    return hmac.new(salt, user.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:16]


def question_of(route: str, body: bytes) -> str:
    """The user's question: the legal route's `question`, or the last user message of a chat completion."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    if route != OPENAI_PATH:
        question = data.get("question")
        return question if isinstance(question, str) else ""
    messages = data.get("messages")
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def answer_facts(route: str, body: bytes) -> AnswerFacts:
    """Answer text, token counts and model name from what the backend sent (JSON or server-sent events),
    each event parsed once."""
    api = Api.openai if route == OPENAI_PATH else Api.legal
    streamed = not body.lstrip().startswith(b"{")
    events = _events(body, streamed)
    usage: dict[str, Any] = {}
    model: str | None = None
    parts: list[str] = []
    for event in events:
        if isinstance(event.get("usage"), dict):
            usage = event["usage"]
        if isinstance(event.get("model"), str):
            model = event["model"]
        if "error" in event:
            parts = []
            break
        parts.append(parse_event(api, event).delta if streamed else _whole_text(api, event))
    return AnswerFacts("".join(parts), _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), model)


def _whole_text(api: Api, data: dict[str, Any]) -> str:
    if api is Api.legal:
        return str(data.get("answer") or "")
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices, list) and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    return str((message.get("content") if isinstance(message, dict) else None) or "")


def _events(body: bytes, streamed: bool) -> list[dict[str, Any]]:
    text = body.decode("utf-8", "replace")
    candidates = [line[5:] for line in text.splitlines() if line.startswith("data:") and "[DONE]" not in line] \
        if streamed else [text]
    events = []
    for candidate in candidates:
        try:
            event = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1") or None
    return None


def build_record(seen: Seen, context: RecordContext) -> AnalyticsRecord:
    """Pure: the line for one request. Tokens come from the backend's `usage` when it sent one; otherwise
    they are estimated from the text and `tokens_estimated` says so. The model is the one the answer
    names (None when it names none: a legal stream; the writer then asks the backend)."""
    user = _header(seen.headers, context.user_header)
    log_text = context.log_text
    question = question_of(seen.route, seen.request_body)
    facts = answer_facts(seen.route, b"".join(seen.answer)) if seen.answer else AnswerFacts("", None, None, None)
    prompt, completion = facts.prompt_tokens, facts.completion_tokens
    estimated = False
    if seen.colour is not None and question and (prompt is None or completion is None):  # a chat, not /v1/models
        estimated = True
        prompt = estimate_tokens(question) if prompt is None else prompt
        completion = estimate_tokens(facts.text) if completion is None else completion
    return AnalyticsRecord(
        timestamp=datetime.fromtimestamp(seen.timestamp, UTC).isoformat(timespec="milliseconds"),
        request_id=seen.request_id, source=SOURCE_ROUTER, colour=seen.colour,
        model=facts.model if seen.colour is not None else None,
        route=seen.route, status=seen.status,
        user=hash_user(user, context.salt) if user else None,
        tier=context.tier_for(user, _header(seen.headers, context.tier_header)),
        question_length=len(question), answer_length=len(facts.text),
        prompt_tokens=prompt, completion_tokens=completion, tokens_estimated=estimated,
        response_time_s=_rounded(seen.response_time_s), ttft_s=_rounded(seen.ttft_s),
        category=context.classify(question) if question.strip() else None,
        question=question if log_text else None, answer=facts.text if log_text else None,
    )


def _rounded(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None


def nginx_record(line: str) -> AnalyticsRecord | None:
    """Pure: the line for one request nginx served, from its JSON access log (`bg_json`); None for a line
    that is not a public request. nginx never shows the router the bodies: no user, lengths, tokens or
    category, and `source` says so; the caller names the model (nginx does not know it)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not str(entry.get("uri", "")).startswith(PUBLIC_PREFIXES):
        return None
    colour = str(entry.get("served") or "") or None
    status = entry.get("status")
    header_times = [part.strip() for part in str(entry.get("upstream_header_time", "")).replace(" : ", ", ").split(",")]
    return AnalyticsRecord(
        timestamp=datetime.fromtimestamp(_number(entry.get("msec")) or 0.0, UTC).isoformat(timespec="milliseconds"),
        request_id=str(entry.get("request_id", "")), source=SOURCE_NGINX, colour=colour,
        model=None, route=str(entry["uri"]),
        status=status if isinstance(status, int) else 0, user=None, tier=None,
        question_length=None, answer_length=None, prompt_tokens=None, completion_tokens=None, tokens_estimated=False,
        response_time_s=_number(entry.get("request_time")), ttft_s=_number(header_times[-1]) if colour else None,
        category=None,
    )


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
