"""ASGI middleware: the body size limit, and per-request metrics and stats.

Both are pure ASGI (not BaseHTTPMiddleware) so streamed responses pass through untouched and a
client disconnect still reaches the route.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bluegreen_common.asgi_body import read_body, replaying
from bluegreen_common.http_errors import error_body
from model_backends.metrics import BackendMetrics
from model_backends.stats import RequestStats

CHAT_ROUTES = frozenset({"/api/v1/chat/legal", "/v1/chat/completions"})
KNOWN_ROUTES = CHAT_ROUTES | {"/v1/models", "/health", "/ready", "/metrics", "/stats"}


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Refuse bodies over `limit` bytes with 413 before any of it is parsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    def _too_large(self) -> dict[str, Any]:
        return error_body(
            f"request body is larger than the {self.limit}-byte limit; shorten the question or context",
            "request_too_large",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_json(send, 413, self._too_large())
        # Read the (bounded) body up front, then replay it; later receives pass through so the
        # route still hears about a disconnect.
        read = await read_body(receive, self.limit)
        if read.disconnected:
            return
        if read.too_big:
            return await _send_json(send, 413, self._too_large())
        await self.app(scope, replaying(read.body, receive), send)


class RequestMetricsMiddleware:
    """Count requests by route and status, time them to the last byte, and keep `/stats`."""

    def __init__(self, app: ASGIApp, metrics: BackendMetrics, stats: RequestStats) -> None:
        self.app, self.metrics, self.stats = app, metrics, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        route = path if path in KNOWN_ROUTES else "other"
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_duration.labels(route).observe(elapsed)
            if path in CHAT_ROUTES:
                failed = bool(scope.get("state", {}).get("failed"))
                self.stats.record(status < 400 and not failed, elapsed)
