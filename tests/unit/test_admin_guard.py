"""Which admin bodies are refused before they are read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_backends.middleware import BodyLimitMiddleware
from router.admin import guard
from router.admin.guard import ADMIN_MAX_BODY_BYTES, DRAIN_MAX_BYTES, AdminBodyGuard, body_refusal, is_json_media_type


@pytest.mark.parametrize(("content_type", "json"), [
    ("application/json", True), ("Application/JSON; charset=utf-8", True), ("application/merge-patch+json", True),
    ("application/x-www-form-urlencoded", False), ("text/plain", False), ("text/json", False), ("", False),
])
def test_json_media_types(content_type: str, json: bool) -> None:
    assert is_json_media_type(content_type) is json


def test_refusals() -> None:
    assert body_refusal("application/json", 10) is None
    assert body_refusal(None, None) is None  # no type: the framework reads JSON
    assert body_refusal("text/plain", 0) is None  # an empty body has no type to speak of
    status, message = body_refusal("application/json", ADMIN_MAX_BODY_BYTES + 1) or (0, "")
    assert status == 413 and "64 KiB" in message
    status, message = body_refusal("application/x-www-form-urlencoded", 13) or (0, "")
    assert status == 415 and "-H 'Content-Type: application/json'" in message
    refusal = body_refusal("text/plain", ADMIN_MAX_BODY_BYTES + 1)
    assert refusal is not None and refusal[0] == 413  # the size is told first


# The guard at the ASGI level: what it reads of a request, whether it hands it on, and what it answers.

class Recorder:
    """An ASGI app that records whether it was called and the body it read."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Client:
    """The server's side of one request: the messages it will receive, and what was sent by the time."""

    def __init__(self, *messages: Message, hang: bool = False) -> None:
        self.messages, self.hang = list(messages), hang
        self.read = 0  # messages received so far
        self.sent: list[tuple[int, Message]] = []  # each sent message, with how many had been read then

    async def receive(self) -> Message:
        if self.read == len(self.messages):
            if self.hang:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        self.read += 1
        return self.messages[self.read - 1]

    async def send(self, message: Message) -> None:
        self.sent.append((self.read, message))

    @property
    def status(self) -> int | None:
        return next((m["status"] for _, m in self.sent if m["type"] == "http.response.start"), None)

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(next((m["headers"] for _, m in self.sent if m["type"] == "http.response.start"), []))


def scope(*headers: tuple[bytes, bytes], path: str = "/admin/weights") -> Scope:
    return {"type": "http", "method": "PUT", "path": path,
            "headers": [(b"content-type", b"application/json"), *headers]}


def chunks(size: int, piece: int = 65_536) -> list[Message]:
    sizes = [piece] * (size // piece) + ([size % piece] if size % piece else [])
    return [{"type": "http.request", "body": b"x" * n, "more_body": i < len(sizes) - 1} for i, n in enumerate(sizes)]


@pytest.mark.parametrize("guard", [AdminBodyGuard, lambda app: BodyLimitMiddleware(app, ADMIN_MAX_BODY_BYTES)])
def test_a_client_that_leaves_mid_body_is_not_acted_on(guard: Callable[[ASGIApp], ASGIApp]) -> None:
    app = Recorder()
    client = Client({"type": "http.request", "body": b'{"green": 2', "more_body": True})  # then http.disconnect
    asyncio.run(guard(app)(scope(), client.receive, client.send))
    assert not app.called and client.sent == []


def test_a_whole_chunked_body_reaches_the_route() -> None:
    app = Recorder()
    client = Client({"type": "http.request", "body": b'{"green": ', "more_body": True},
                    {"type": "http.request", "body": b'25}', "more_body": False})
    asyncio.run(AdminBodyGuard(app)(scope(), client.receive, client.send))
    assert app.called and app.body == b'{"green": 25}' and client.status == 200


@pytest.mark.parametrize(("headers", "size"), [
    ([(b"content-length", str(5_000_000).encode())], 5_000_000),  # announced: refused before the route
    ([], 5_000_000),  # chunked: refused once past the limit
    ([(b"content-length", b"13"), (b"content-type", b"text/plain")], 13),  # 415
])
def test_a_refused_body_is_read_to_its_end_before_the_answer(headers: list[tuple[bytes, bytes]], size: int) -> None:
    app = Recorder()
    client = Client(*chunks(size))
    asyncio.run(AdminBodyGuard(app)(scope(*headers), client.receive, client.send))
    assert not app.called and client.status in (413, 415)
    assert client.sent[0][0] == len(client.messages)  # every message read before the first byte of the answer
    assert b"connection" not in client.headers  # all read: the connection can stay


def test_a_body_past_the_cap_is_answered_and_closed() -> None:
    announced = Client(*chunks(DRAIN_MAX_BYTES + 1))
    asyncio.run(AdminBodyGuard(Recorder())(scope((b"content-length", str(DRAIN_MAX_BYTES + 1).encode())),
                                          announced.receive, announced.send))
    assert announced.read == 0 and announced.status == 413 and announced.headers[b"connection"] == b"close"
    chunked = Client(*chunks(20 * 1024 * 1024))
    asyncio.run(AdminBodyGuard(Recorder())(scope(), chunked.receive, chunked.send))
    assert chunked.status == 413 and chunked.headers[b"connection"] == b"close"
    assert chunked.read < len(chunked.messages) and chunked.read * 65_536 <= DRAIN_MAX_BYTES + 2 * 65_536 + ADMIN_MAX_BODY_BYTES


def test_a_body_held_back_for_100_continue_is_not_waited_for() -> None:
    client = Client(*chunks(100_000))
    asyncio.run(AdminBodyGuard(Recorder())(scope((b"content-length", b"100000"), (b"expect", b"100-continue")),
                                          client.receive, client.send))
    assert client.read == 0 and client.status == 413 and client.headers[b"connection"] == b"close"


def test_a_body_that_stalls_is_answered_after_the_time_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "DRAIN_MAX_S", 0.2)
    client = Client(*chunks(100_000)[:1], hang=True)
    started = time.perf_counter()
    asyncio.run(AdminBodyGuard(Recorder())(scope((b"content-length", b"100000")), client.receive, client.send))
    assert time.perf_counter() - started < 2
    assert client.status == 413 and client.headers[b"connection"] == b"close"
