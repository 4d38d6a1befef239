"""One analytics record from what the proxy saw: fields, tokens, the user's hash, and no text by default."""

from __future__ import annotations

import json

import pytest

from router.analytics.categories import classify
from router.analytics.record import (
    RecordContext,
    Seen,
    answer_facts,
    build_record,
    hash_user,
    nginx_record,
    question_of,
)

SALT = b"test-salt"
LEGAL = "/api/v1/chat/legal"
OPENAI = "/v1/chat/completions"
QUESTION = "Меня уволили без предупреждения, что делать?"
ANSWER = "Обратитесь в трудовую инспекцию или в суд в течение месяца."


def context(log_text: bool = False) -> RecordContext:
    tiers = {"free", "premium"}
    return RecordContext(SALT, log_text, classify, b"x-user-id", b"x-user-tier",
                         lambda user, tier: None if not user else (tier if tier in tiers else "free"))


def seen(route: str = LEGAL, body: dict | None = None, answer: list[bytes] | None = None, colour: str | None = "blue",
         status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> Seen:
    request = json.dumps(body if body is not None else {"question": QUESTION}, ensure_ascii=False).encode()
    return Seen(1_780_000_000.25, "req-1", route, colour, status, headers or [], request, answer, 1.5, 0.25)


def legal_json(usage: bool = True) -> bytes:
    body = {"answer": ANSWER, "model": "saiga-tiny", "finish_reason": "stop"}
    if usage:
        body["usage"] = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    return json.dumps(body, ensure_ascii=False).encode()


def sse(*events: dict) -> list[bytes]:
    return [f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode() for event in events]


def test_a_json_answer_gives_every_field_and_the_backends_own_token_counts() -> None:
    record = build_record(seen(answer=[legal_json()]), context())
    assert record.timestamp == "2026-05-28T20:26:40.250+00:00"
    assert (record.request_id, record.source, record.colour, record.route, record.status) == ("req-1", "router", "blue", LEGAL, 200)
    assert record.model == "saiga-tiny"
    assert record.question_length == len(QUESTION) and record.answer_length == len(ANSWER)
    assert (record.prompt_tokens, record.completion_tokens, record.tokens_estimated) == (40, 12, False)
    assert (record.response_time_s, record.ttft_s) == (1.5, 0.25)
    assert record.category == "labour_law"


def test_a_stream_is_read_from_its_events_with_usage_in_the_last_one() -> None:
    pieces = sse({"delta": ANSWER[:10]}, {"delta": ANSWER[10:]},
                 {"done": True, "finish_reason": "stop", "usage": {"prompt_tokens": 7, "completion_tokens": 9}})
    joined = b"".join(pieces)
    split = [joined[:15], joined[15:50], joined[50:]]  # pieces as they arrived, cut anywhere
    record = build_record(seen(answer=split), context())
    assert record.answer_length == len(ANSWER)
    assert (record.prompt_tokens, record.completion_tokens, record.tokens_estimated) == (7, 9, False)
    assert record.model is None  # the legal stream names no model: the writer asks the backend


def test_without_usage_tokens_are_estimated_and_flagged() -> None:
    record = build_record(seen(answer=[legal_json(usage=False)]), context())
    assert record.tokens_estimated
    assert record.prompt_tokens == pytest.approx(len(QUESTION) / 3, abs=1)
    assert record.completion_tokens == pytest.approx(len(ANSWER) / 3, abs=1)


def test_an_openai_request_takes_the_last_user_message_and_the_reported_model() -> None:
    body = {"model": "x", "messages": [{"role": "system", "content": "Ты юрист."},
                                       {"role": "user", "content": "Как платить налог на квартиру?"},
                                       {"role": "assistant", "content": "..."},
                                       {"role": "user", "content": [{"type": "text", "text": "Какие налоги платит ИП?"}]}]}
    answer = {"model": "vistral-tiny", "choices": [{"message": {"role": "assistant", "content": ANSWER}}],
              "usage": {"prompt_tokens": 30, "completion_tokens": 11}}
    record = build_record(seen(OPENAI, body, [json.dumps(answer, ensure_ascii=False).encode()], colour="green"),
                          context())
    assert record.question_length == len("Какие налоги платит ИП?") and record.category == "tax_law"
    assert record.model == "vistral-tiny" and record.answer_length == len(ANSWER)
    assert (record.prompt_tokens, record.completion_tokens) == (30, 11)


def test_the_user_id_is_hashed_with_the_salt_and_never_written() -> None:
    user = "user-4242@example.org"
    headers = [(b"X-User-ID", user.encode()), (b"X-User-Tier", b"premium")]
    line = build_record(seen(answer=[legal_json()], headers=headers), context()).to_json()
    record = json.loads(line)
    assert record["user"] == hash_user(user, SALT) and record["tier"] == "premium"
    assert user not in line and "4242" not in line
    assert record["user"] != hash_user(user, b"another-salt")  # without the salt a guessed id cannot be tested
    assert hash_user(user, SALT) == hash_user(user, SALT)  # stable: one user, one value


def test_anonymous_requests_have_no_user_and_the_limiters_tier() -> None:
    record = build_record(seen(answer=[legal_json()]), context())
    assert record.user is None and record.tier is None
    unknown_tier = build_record(seen(answer=[legal_json()], headers=[(b"x-user-id", b"u"), (b"x-user-tier", b"gold")]),
                                context())
    assert unknown_tier.tier == "free"


def test_no_text_by_default_and_both_texts_with_log_text() -> None:
    quiet = json.loads(build_record(seen(answer=[legal_json()]), context()).to_json())
    assert "question" not in quiet and "answer" not in quiet
    assert QUESTION not in json.dumps(quiet, ensure_ascii=False) and ANSWER not in json.dumps(quiet, ensure_ascii=False)
    loud = json.loads(build_record(seen(answer=[legal_json()]), context(log_text=True)).to_json())
    assert (loud["question"], loud["answer"]) == (QUESTION, ANSWER)


def test_a_request_the_router_refused_has_no_colour_model_tokens_or_category() -> None:
    record = build_record(Seen(1.0, "r", LEGAL, None, 429, [], b"", None, None, None), context())
    assert (record.colour, record.model, record.status, record.category) == (None, None, 429, None)
    assert (record.prompt_tokens, record.completion_tokens, record.tokens_estimated) == (None, None, False)


def test_an_error_answer_has_no_text_and_a_body_that_is_not_json_no_question() -> None:
    error = json.dumps({"error": {"message": "overloaded", "type": "server_error"}}).encode()
    record = build_record(seen(answer=[error], status=503), context())
    assert record.status == 503 and record.answer_length == 0
    assert question_of(LEGAL, b"not json") == "" and question_of(LEGAL, b"[1, 2]") == ""
    assert question_of(OPENAI, json.dumps({"messages": "nope"}).encode()) == ""
    assert answer_facts(LEGAL, b"").text == ""


def test_an_nginx_access_log_line_gives_what_nginx_knows_and_says_where_it_came_from() -> None:
    line = json.dumps({"msec": 1780000000.250, "colour": "green", "served": "blue", "status": 200, "request_time": 0.8,
                       "upstream_addr": "127.0.0.1:8002, 127.0.0.1:8001", "upstream_status": "503, 200",
                       "upstream_response_time": "0.01, 0.79", "upstream_header_time": "0.01, 0.3",
                       "request_id": "abc", "uri": "/v1/chat/completions"})
    record = nginx_record(line)
    assert record is not None
    assert (record.source, record.colour, record.model, record.status, record.route) == (
        "nginx", "blue", None, 200, "/v1/chat/completions")  # the colour that answered after the retry
    assert (record.response_time_s, record.ttft_s, record.timestamp) == (0.8, 0.3, "2026-05-28T20:26:40.250+00:00")
    assert record.category is None and record.question_length is None and record.prompt_tokens is None
    assert nginx_record(json.dumps({"uri": "/nginx-health", "status": 200})) is None
    assert nginx_record("not json") is None
