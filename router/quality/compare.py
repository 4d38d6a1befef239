"""Ask blue and green the same questions over HTTP, streamed, and record what each answered and how.

Streaming is what gives the time to first token and the gaps between chunks; the answer text and
the finish reason then go through the pure checks. Each colour gets its own concurrency limit, so
a slow green never holds back blue's figures (and the other way round).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from router.errors import CompareFailed
from router.quality.checks import AnswerChecks, CheckLimits, PairChecks, check_answer, chrf, stream_timing
from router.quality.questions import Question

LEGAL_PATH = "/api/v1/chat/legal"
OPENAI_PATH = "/v1/chat/completions"
COLOURS = ("blue", "green")


class Api(StrEnum):
    legal = "legal"
    openai = "openai"


@dataclass(frozen=True)
class Endpoint:
    api: Api
    url: str  # where questions are posted
    base: str  # scheme://host:port, for the reachability probe


def endpoint_of(url: str) -> Endpoint:
    """A backend's base URL asks the legal route; a URL ending in `/v1` or `/v1/chat/completions` the
    OpenAI-compatible one (a vLLM or any upstream); a URL ending in the legal path is taken as it is."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r} (e.g. http://127.0.0.1:8001)")
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if path.endswith(OPENAI_PATH):
        return Endpoint(Api.openai, base + path, base)
    if path.endswith("/v1"):
        return Endpoint(Api.openai, base + path + "/chat/completions", base)
    if path.endswith(LEGAL_PATH):
        return Endpoint(Api.legal, base + path, base)
    return Endpoint(Api.legal, base + path + LEGAL_PATH, base)


@dataclass(frozen=True)
class CompareOptions:
    repeats: int = 1
    concurrency: int = 1  # requests in flight per colour (a backend runs one generation at a time)
    max_tokens: int = 256
    temperature: float | None = None  # None: each backend's default
    timeout_s: float = 300.0
    limits: CheckLimits = CheckLimits()


def request_body(api: Api, question: str, options: CompareOptions) -> dict[str, Any]:
    sampling: dict[str, Any] = {"max_tokens": options.max_tokens, "stream": True}
    if options.temperature is not None:
        sampling["temperature"] = options.temperature
    if api is Api.legal:
        return {"question": question, **sampling}
    return {"messages": [{"role": "user", "content": question}], "stream_options": {"include_usage": True},
            **sampling}


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event of either API, reduced to what a comparison needs."""

    delta: str = ""
    finish_reason: str | None = None
    tokens: int | None = None
    error: str | None = None


def _error_message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"])
    return str(body)[:300]


def parse_event(api: Api, data: dict[str, Any]) -> StreamEvent:
    if "error" in data:
        return StreamEvent(error=_error_message(data))
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    tokens = usage.get("completion_tokens") if usage else None
    if api is Api.legal:
        finish = data.get("finish_reason") if data.get("done") else None
        return StreamEvent(str(data.get("delta") or ""), finish, tokens)
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return StreamEvent(str(content or ""), choice.get("finish_reason"), tokens)


@dataclass(frozen=True)
class Reply:
    """What one request brought back (ok is False for an HTTP error, a broken stream, a timeout)."""

    ok: bool
    answer: str = ""
    finish_reason: str | None = None
    tokens: int | None = None
    time_s: float = 0.0
    chunk_offsets_s: tuple[float, ...] = ()
    status: int | None = None
    error: str | None = None
    connected: bool = True  # False when no connection could be made (refused, no such host)


# No connection made: refused or no such host (ConnectError), or no answer to the SYN (ConnectTimeout,
# which is not a ConnectError).
NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout)


def connect_timeout(timeout_s: float) -> float:
    """Time to connect: under the whole request's, so a host that drops SYNs ends in ConnectTimeout, not the
    request's own deadline (which cannot tell a host never reached from a model that never finished)."""
    return min(30.0, timeout_s / 2)


async def ask(client: httpx.AsyncClient, endpoint: Endpoint, question: str, options: CompareOptions) -> Reply:
    """Post one question, streamed, and time the chunks as they arrive."""
    started = time.perf_counter()
    text: list[str] = []
    offsets: list[float] = []
    finish: str | None = None
    tokens: int | None = None
    try:
        async with asyncio.timeout(options.timeout_s), client.stream(
            "POST", endpoint.url, json=request_body(endpoint.api, question, options),
            timeout=httpx.Timeout(options.timeout_s, connect=connect_timeout(options.timeout_s)),
        ) as response:
            if response.status_code != 200:
                raw = await response.aread()
                try:
                    message = _error_message(json.loads(raw))
                except ValueError:
                    message = raw.decode(errors="replace")[:300]
                return Reply(False, time_s=time.perf_counter() - started, status=response.status_code,
                             error=f"HTTP {response.status_code}: {message}")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                data = json.loads(line[6:])
                if not isinstance(data, dict):
                    raise ValueError(f"unexpected event: {line[:200]}")
                event = parse_event(endpoint.api, data)
                if event.error is not None:
                    return Reply(False, "".join(text), time_s=time.perf_counter() - started, status=200,
                                 error=f"stream error: {event.error}")
                if event.delta:
                    offsets.append(time.perf_counter() - started)
                    text.append(event.delta)
                finish = event.finish_reason or finish
                tokens = event.tokens if event.tokens is not None else tokens
    except TimeoutError:
        return Reply(False, "".join(text), time_s=time.perf_counter() - started,
                     error=f"no complete answer within {options.timeout_s:g} s")
    except (httpx.HTTPError, ValueError) as exc:
        return Reply(False, "".join(text), time_s=time.perf_counter() - started,
                     error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                     connected=not isinstance(exc, NOT_CONNECTED))
    return Reply(True, "".join(text), finish, tokens, time.perf_counter() - started, tuple(offsets), 200)


@dataclass(frozen=True)
class AnswerRecord:
    """One colour's answer to one question (one repeat), with its figures and checks."""

    colour: str
    ok: bool
    answer: str
    error: str | None
    status: int | None
    finish_reason: str | None
    tokens: int | None
    time_s: float
    ttft_s: float | None
    gap_p95_s: float | None
    per_token_s: float | None
    tokens_per_s: float | None  # generated tokens over the whole request time
    checks: AnswerChecks | None  # None when the request failed
    chrf_reference: float | None
    connected: bool = True  # False when no connection could be made


def record(colour: str, reply: Reply, reference: str | None, limits: CheckLimits) -> AnswerRecord:
    timing = stream_timing(reply.chunk_offsets_s, reply.tokens)
    speed = reply.tokens / reply.time_s if reply.ok and reply.tokens and reply.time_s > 0 else None
    return AnswerRecord(
        colour=colour, ok=reply.ok, answer=reply.answer, error=reply.error, status=reply.status,
        finish_reason=reply.finish_reason, tokens=reply.tokens, time_s=reply.time_s, ttft_s=timing.ttft_s,
        gap_p95_s=timing.gap_p95_s, per_token_s=timing.per_token_s, tokens_per_s=speed,
        checks=check_answer(reply.answer, reply.finish_reason, limits) if reply.ok else None,
        chrf_reference=chrf(reply.answer, reference) if reply.ok and reference else None,
        connected=reply.connected,
    )


EXAMPLE_PORTS = {"blue": 8001, "green": 8002}


def setup_problem(colour: str, endpoint: Endpoint, records: Sequence[AnswerRecord]) -> str | None:
    """Why a colour's failures point at its URL rather than its model, or None.

    Every request answered with the same 4xx (404 a wrong path, 401/403 a gate, 405/422 another API)
    or none connected at all: the comparison could not run against that colour. 5xx answers, broken
    streams and timeouts, even on every request, are the model's failures: a regression, never this.
    """
    if not records or any(r.ok for r in records):
        return None
    n = len(records)
    hint = f"check --{colour} (the backend's base URL, e.g. http://host:{EXAMPLE_PORTS.get(colour, 8001)})"
    statuses = {r.status for r in records}
    status = next(iter(statuses))
    if len(statuses) == 1 and status is not None and 400 <= status < 500:
        said = (records[0].error or "").removeprefix(f"HTTP {status}: ").strip()
        return (f"{colour} answered {status} to all {n} requests: {hint}; they went to {endpoint.url}"
                + (f", which said {said[:160]!r}" if said else ""))
    if not any(r.connected for r in records):
        return f"{colour}: none of its {n} requests connected to {endpoint.base} ({records[0].error}): {hint}"
    return None


@dataclass
class QuestionResult:
    """Both colours' answers to one question (one repeat), and how they compare."""

    question: Question
    repeat: int
    answers: dict[str, AnswerRecord] = field(default_factory=dict)

    @property
    def pair(self) -> PairChecks | None:
        blue, green = self.answers.get("blue"), self.answers.get("green")
        if blue is None or green is None or not (blue.ok and green.ok):
            return None
        return PairChecks.of(blue.answer, green.answer)


class Unreachable(CompareFailed):
    """Nothing answers at the backend's address."""


async def not_ready(client: httpx.AsyncClient, endpoint: Endpoint) -> str | None:
    """Why the backend cannot answer yet (its model is loading, say), or None when it can.

    A server without `/ready` (an OpenAI-compatible upstream) counts as ready; one that cannot be
    reached at all raises `Unreachable`, since waiting would not help.
    """
    try:
        response = await client.get(endpoint.base + "/ready", timeout=10)
    except httpx.HTTPError as exc:
        raise Unreachable(f"{endpoint.base} is unreachable: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 503:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{endpoint.base}/ready answers 503"
    reason = body.get("reason") if isinstance(body, dict) else None
    return f"{endpoint.base} is not ready: {reason or body}"


async def run_comparison(
    endpoints: dict[str, Endpoint], questions: Sequence[Question], options: CompareOptions,
    on_answer: Callable[[AnswerRecord], None] = lambda _: None,
) -> list[QuestionResult]:
    """Every question, `repeats` times, to both colours (blue and green in parallel)."""
    results = [QuestionResult(q, r) for r in range(options.repeats) for q in questions]
    limits = {colour: asyncio.Semaphore(options.concurrency) for colour in endpoints}
    pool = httpx.Limits(max_connections=options.concurrency * len(endpoints) + 2)
    async with httpx.AsyncClient(limits=pool, trust_env=False) as client:

        async def one(result: QuestionResult, colour: str) -> None:
            async with limits[colour]:
                reply = await ask(client, endpoints[colour], result.question.text, options)
            answer = record(colour, reply, result.question.reference, options.limits)
            result.answers[colour] = answer
            on_answer(answer)

        await asyncio.gather(*(one(result, colour) for result in results for colour in endpoints))
    return results
