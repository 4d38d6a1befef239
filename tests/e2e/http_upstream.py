"""A small real HTTP server standing in for a backend whose behaviour a test sets directly.

It runs uvicorn on a loopback port in a background thread. Tests switch it to answer 5xx, stall
before the first byte, fail `/ready`, or stream slowly, and read what it saw (headers, streams
closed early).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bluegreen_common.processes import free_port


@dataclass
class Behaviour:
    fail_status: int | None = None
    fail_after_requests: int = 0  # answer this many requests normally before failing with fail_status
    first_byte_delay_s: float = 0.0
    ready_status: int = 200
    hook_status: int = 200


@dataclass
class Seen:
    requests: int = 0
    last_headers: dict[str, str] = field(default_factory=dict)
    streams_open: int = 0
    streams_cut: int = 0
    last_event_sent_at: float = 0.0
    stream_peer_port: int = 0  # the router's side of the last stream's connection
    hooks: list[dict] = field(default_factory=list)


class HttpUpstream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.behaviour = Behaviour()
        self.seen = Seen()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        self.behaviour, self.seen = Behaviour(), Seen()

    async def _chat(self, request: Request) -> Response:
        self.seen.requests += 1
        self.seen.last_headers = dict(request.headers)
        body = json.loads(await request.body() or b"{}")
        if self.behaviour.fail_status and self.seen.requests > self.behaviour.fail_after_requests:
            return JSONResponse({"error": {"message": f"{self.name} fails on purpose"}}, self.behaviour.fail_status)
        if self.behaviour.first_byte_delay_s:
            await asyncio.sleep(self.behaviour.first_byte_delay_s)
        if body.get("stream"):
            self.seen.stream_peer_port = request.client.port if request.client else 0
            return StreamingResponse(self._events(body.get("events", 3), body.get("delay_s", 0.0)),
                                     media_type="text/event-stream")
        # All Cyrillic, so that the answer checks (the shadow phase) find both colours' answers Russian.
        spoken = {"blue": "синего", "green": "зелёного"}.get(self.name, "тестового")
        return JSONResponse({"answer": f"ответ от {spoken} сервера", "colour": self.name, "echo": body})

    async def _events(self, count: int, delay_s: float):
        self.seen.streams_open += 1
        finished = False
        try:
            for i in range(count):
                if i:
                    await asyncio.sleep(delay_s)
                self.seen.last_event_sent_at = time.monotonic()
                yield f"data: {json.dumps({'delta': f'{self.name}-{i}'})}\n\n".encode()
            finished = True
            yield b"data: [DONE]\n\n"
        finally:
            self.seen.streams_open -= 1
            if not finished:
                self.seen.streams_cut += 1

    async def _hook(self, request: Request) -> Response:
        self.seen.hooks.append(await request.json())
        return JSONResponse({"ok": self.behaviour.hook_status < 300}, self.behaviour.hook_status)

    async def _ready(self, request: Request) -> Response:
        return JSONResponse({"ready": self.behaviour.ready_status == 200}, self.behaviour.ready_status)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/v1/chat/legal", self._chat, methods=["POST"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/ready", self._ready),
            Route("/hook", self._hook, methods=["POST"]),
        ])

    def start(self) -> HttpUpstream:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                proxy_headers=False, timeout_keep_alive=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"upstream-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError(f"upstream {self.name} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
