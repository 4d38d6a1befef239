"""The built-in data plane: a weighted, sticky, streaming reverse proxy in front of blue and green.

A pure ASGI app (no framework routing on the hot path). Per request: read the bounded body, apply
the tier's rate limit, find the session key, choose a colour, open the backend (retrying a green
failure once on blue within the budget), then pass the answer through chunk by chunk while
watching for the client going away.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from bluegreen_common.http_errors import ERROR_TYPES, error_body
from router.analytics.record import Seen
from router.analytics.writer import AnalyticsWriter
from router.config import RouterConfig
from router.errors import ClientGone, RequestRefused, StreamBroken, UpstreamFailure
from router.metrics import RouterMetrics
from router.proxy.mirror import AnswerTap, Mirror
from router.proxy.outliers import Ejection, OutlierDetector
from router.proxy.ratelimit import RateLimiter
from router.proxy.retry import RetryBudget
from router.proxy.routing import PIN_HEADER, PinRefusal, choose, pinned_colour
from router.proxy.session import session_key, set_cookie_header
from router.proxy.upstream import OpenResponse, Upstream
from router.quality.checks import CHECK_NAMES
from router.quality.live import LiveChecks
from router.rollout.windows import SlidingWindow
from router.throttled_log import ThrottledLog
from router.traffic import Traffic
from router.weights import Colour

log = logging.getLogger("bluegreen.proxy")

REQUEST_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect",
})
# The router's server stamps its own Date and Server, as nginx does.
RESPONSE_HOP_BY_HOP = (REQUEST_HOP_BY_HOP - {b"content-length"}) | {b"date", b"server"}
UNFORWARDED_WHEN_PINNED = frozenset({b"authorization", PIN_HEADER})


@dataclass
class Exchange:
    """What the proxy knows about one request while it serves it."""

    method: str
    target: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    request_id: str
    extra_response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    attempt_started: float = 0.0
    is_retry: bool = False
    finished: bool = False
    # for analytics: the colour of the latest attempt, its status, time to its first byte, the answer's pieces
    started: float = field(default_factory=time.perf_counter)
    colour: Colour | None = None
    status: int = 0
    ttft_s: float | None = None
    answer: list[bytes] | None = None


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})


class Proxy:
    def __init__(self, config: RouterConfig, traffic: Traffic, upstreams: dict[Colour, Upstream],
                 windows: dict[Colour, SlidingWindow], metrics: RouterMetrics, limiter: RateLimiter,
                 on_connect_failure: Callable[[Colour, str], None] | None = None,
                 outliers: OutlierDetector | None = None, on_ejection: Callable[[Ejection], None] | None = None,
                 mirror: Mirror | None = None, live_checks: LiveChecks | None = None,
                 analytics: AnalyticsWriter | None = None) -> None:
        self.config, self.traffic, self.upstreams = config, traffic, upstreams
        self.analytics = analytics  # one JSON line per request, written off the hot path
        self.windows, self.metrics, self.limiter = windows, metrics, limiter
        self.budget = RetryBudget(config.retry)
        self.outliers = outliers or OutlierDetector(config.outliers)
        self.failure_log = ThrottledLog(log)
        self.on_connect_failure = on_connect_failure
        self.on_ejection = on_ejection
        self.mirror = mirror  # the shadow phase's: mirrors a sample of the stable colour's requests to the canary
        self.live_checks = live_checks  # a sample of both colours' answers, checked for the step's judge
        self._session_header = config.session_header.lower().encode()
        self._cookie_name = config.session_cookie.encode()
        self._user_header = config.rate_limit.user_header.lower().encode()
        self._tier_header = config.rate_limit.tier_header.lower().encode()
        token = config.admin_token
        self._admin_token = None if token is None else token.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        found = dict(headers)
        request_id = (found.get(b"x-request-id") or b"").decode("latin-1") or os.urandom(16).hex()
        ids = [(b"x-request-id", request_id.encode("latin-1"))]
        pin = found.get(PIN_HEADER)  # absent on every request but an operator's QA one
        try:
            body = await self._read_body(receive, found)
            self._check_rate(found, scope)
            pinned = None if pin is None else self._pinned(pin, found)
        except RequestRefused as refused:
            self.metrics.rejected.labels(refused.reason).inc()
            if self.analytics is not None:
                self.analytics.submit(Seen(time.time(), request_id, scope["path"], None, refused.status, headers, b"",
                                           None, None, None))
            return await send_json(send, refused.status, refused.body, [*ids, *refused.headers])
        except ClientGone:
            return
        session = session_key(found.get(self._session_header), found.get(b"cookie"), self._cookie_name)
        extra = ids
        if session.is_new:
            extra = [*ids, set_cookie_header(self.config.session_cookie, session.key, self.config.cookie_max_age_s)]
        path = scope["path"]
        exchange = Exchange(
            method=scope["method"], target=_target(scope), path=path,
            headers=self._upstream_headers(headers, scope, request_id), body=body, request_id=request_id,
            extra_response_headers=extra, answer=[] if self.analytics is not None else None,
        )
        if pinned is None:
            colour = choose(session.key, self.traffic.green_bp, self.traffic.available)
        else:  # the admin token stays here: backends never see it
            colour = pinned
            exchange.headers = [(k, v) for k, v in exchange.headers if k.lower() not in UNFORWARDED_WHEN_PINNED]
        await self._serve_watching_disconnect(exchange, colour, receive, send)

    # -- request side -------------------------------------------------------------------------

    async def _read_body(self, receive: Receive, found: dict[bytes, bytes]) -> bytes:
        limit = self.config.max_body_bytes
        declared = found.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_rate(self, found: dict[bytes, bytes], scope: Scope) -> None:
        user = (found.get(self._user_header) or b"").decode("latin-1")
        tier = (found.get(self._tier_header) or b"").decode("latin-1")
        client = scope.get("client")
        verdict = self.limiter.check(user or None, tier or None, client[0] if client else "")
        if verdict.allowed:
            return
        message = (f"rate limit of {verdict.limit} requests per hour for tier '{verdict.tier}' is spent; "
                   f"retry after {verdict.retry_after_s} s or move to a higher tier")
        raise RequestRefused(429, "rate_limited", error_body(message, "rate_limit_exceeded"),
                             [(b"retry-after", str(verdict.retry_after_s).encode())])

    def _pinned(self, pin: bytes, found: dict[bytes, bytes]) -> Colour:
        """The colour an operator pins for QA; refused (401/403/400) without the admin token or a colour."""
        verdict = pinned_colour(pin, found.get(b"authorization"), self._admin_token)
        if isinstance(verdict, PinRefusal):
            challenge = [(b"www-authenticate", b"Bearer")] if verdict.status == 401 else []
            raise RequestRefused(verdict.status, "pin_refused", error_body(verdict.message, ERROR_TYPES[verdict.status]),
                                 challenge)
        return verdict

    def _upstream_headers(self, headers: list[tuple[bytes, bytes]], scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
        client = scope.get("client")
        client_ip = client[0].encode() if client else b""
        forwarded_for = client_ip
        dropped = REQUEST_HOP_BY_HOP | _named_in_connection(headers)
        out = []
        for name, value in headers:
            lower = name.lower()
            if lower in dropped or lower == b"x-request-id":
                continue
            if lower == b"x-forwarded-for":
                forwarded_for = value + b", " + client_ip
                continue
            out.append((name, value))
        out.append((b"x-forwarded-for", forwarded_for))
        out.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        out.append((b"x-request-id", request_id.encode("latin-1")))
        return out

    # -- serving ------------------------------------------------------------------------------

    async def _serve_watching_disconnect(self, exchange: Exchange, colour: Colour, receive: Receive, send: Send) -> None:
        """Serve; if the client disconnects first, cancel the work so the backend stream is closed."""
        current = asyncio.current_task()
        gone = False

        def client_left(watcher: asyncio.Task[Any]) -> None:
            nonlocal gone
            if not watcher.cancelled() and not exchange.finished and current is not None:
                gone = True
                current.cancel()

        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        watcher.add_done_callback(client_left)
        try:
            await self._serve(exchange, colour, send)
        except asyncio.CancelledError:
            if not gone or current is None:
                raise
            current.uncancel()
            self.metrics.rejected.labels("client_disconnected").inc()
        finally:
            watcher.cancel()
            if self.analytics is not None:
                self.analytics.submit(self._seen(exchange, gone))

    def _seen(self, exchange: Exchange, gone: bool) -> Seen:
        """What analytics gets of a request: references and numbers, parsed later by its background task."""
        return Seen(time.time(), exchange.request_id, exchange.path, exchange.colour.value if exchange.colour else None,
                    499 if gone else exchange.status, exchange.headers, exchange.body, exchange.answer,
                    time.perf_counter() - exchange.started, exchange.ttft_s)

    async def _serve(self, exchange: Exchange, colour: Colour, send: Send) -> None:
        capture = None
        if self.mirror is not None and self.mirror.active and colour is self.traffic.stable:
            capture = self.mirror.start(exchange.path, exchange.method, exchange.target, exchange.headers,
                                        exchange.body, colour.other)
        checked = self.live_checks is not None and self.live_checks.sampled(colour)
        tap = AnswerTap(exchange.path) if capture is not None or checked else None
        answer = None
        try:
            opened, colour = await self._open_with_retry(exchange, colour)
            if isinstance(opened, UpstreamFailure):
                return await self._answer_failure(exchange, colour, opened, send)
            await self._pass_through(exchange, colour, opened, send, tap=tap)
            if tap is not None and opened.status < 400:
                answer = tap.answer()
        finally:
            if capture is not None and self.mirror is not None:
                self.mirror.stable_done(capture, answer, tap.gap_p95_s() if tap is not None and answer else None)
            if checked and answer is not None and self.live_checks is not None:
                self._check_answer(colour, answer)

    def _check_answer(self, colour: Colour, answer: tuple[str, str | None]) -> None:
        """One sampled live answer through the answer checks (the judge weighs them per step)."""
        assert self.live_checks is not None
        failed = self.live_checks.add(colour, answer, time.time()).failures
        for check in CHECK_NAMES:
            self.metrics.answer_checked(colour.value, check, check in failed)

    async def _open_with_retry(self, exchange: Exchange, colour: Colour) -> tuple[OpenResponse | UpstreamFailure, Colour]:
        """Open `colour`; a green failure is retried once on blue when the budget and blue allow."""
        first = await self._attempt(exchange, colour)
        if not isinstance(first, UpstreamFailure) or colour is not Colour.green:
            return first, colour
        denied = self._retry_denied()
        if denied:
            self.metrics.retries_denied.labels(denied).inc()
            return first, colour
        if first.response is not None:
            await first.response.close()
        self.metrics.retries.labels(first.kind).inc()
        exchange.extra_response_headers.append((b"x-retried-from", b"green"))
        exchange.is_retry = True
        return await self._attempt(exchange, Colour.blue), Colour.blue

    def _retry_denied(self) -> str | None:
        if not self.config.retry.enabled:
            return "disabled"
        if not self.traffic.health[Colour.blue].serving:
            return "blue_not_ready"
        if self.budget.allows():
            return None
        if self.outliers.failing(Colour.blue):  # both colours failing: the budget alone applies, no storm
            return "blue_failing"
        # Every client request has one attempt in flight at a time; this one is between its two.
        return None if self.budget.blue_can_carry_more(self.budget.requests_in_flight + 1) else "budget"

    async def _attempt(self, exchange: Exchange, colour: Colour) -> OpenResponse | UpstreamFailure:
        started = exchange.attempt_started = time.perf_counter()
        exchange.colour = colour
        self._begin_attempt(exchange, colour)
        try:
            opened = await self.upstreams[colour].open(exchange.method, exchange.target, exchange.headers, exchange.body)
        except UpstreamFailure as failure:
            self._observe(colour, ok=False)
            self._record(colour, exchange.path, failure.status, time.perf_counter() - started, None, ok=False)
            self.metrics.upstream_errors.labels(colour.value, failure.kind).inc()
            if failure.kind == "connect" and self.on_connect_failure is not None:
                self.on_connect_failure(colour, failure.detail)
            self.failure_log.warning(f"{colour.value} {failure.kind}", "%s (request %s)", failure.detail, exchange.request_id)
            self._end_attempt(exchange, colour)
            return failure
        except BaseException:  # the client left while the backend was being opened
            self._end_attempt(exchange, colour)
            raise
        self._observe(colour, ok=True)
        return opened

    def _observe(self, colour: Colour, ok: bool) -> None:
        """Feed outlier detection; a colour that tips over its limits leaves new traffic at once."""
        stable = self.traffic.stable  # only the canary is ever ejected: its sessions go to the stable colour
        may_eject = colour is not stable and self.traffic.health[stable].serving
        ejection = self.outliers.observe(colour, ok, time.monotonic(), may_eject)
        if ejection is None:
            return
        self.traffic.set_ejected(colour, ejection.reason)
        self.metrics.ejections.labels(colour.value, ejection.kind).inc()
        log.warning("%s; its sessions go to %s", ejection.reason, colour.other.value)
        if self.on_ejection is not None:
            self.on_ejection(ejection)

    async def _pass_through(self, exchange: Exchange, colour: Colour, opened: OpenResponse, send: Send,
                            record: bool = True, tap: AnswerTap | None = None) -> None:
        """Send the backend's answer on as it arrives; the attempt ends (and is recorded) here."""
        ok = True
        try:
            headers = [(k, v) for k, v in opened.headers if k.lower() not in RESPONSE_HOP_BY_HOP]
            headers += [(b"x-backend", colour.value.encode()), *exchange.extra_response_headers]
            await send({"type": "http.response.start", "status": opened.status, "headers": headers})
            async for piece, last in opened.pieces():  # what has arrived, in one piece; the end rides with the last
                exchange.finished = last
                await send({"type": "http.response.body", "body": piece, "more_body": not last})
                if tap is not None:
                    tap.feed(piece)
                if exchange.answer is not None:
                    exchange.answer.append(piece)
        except StreamBroken as broken:  # after the first byte: too late to retry on the other colour
            ok = False
            self._observe(colour, ok=False)
            self.metrics.streams_broken.labels(colour.value).inc()
            self.metrics.upstream_errors.labels(colour.value, broken.kind).inc()
            self.failure_log.warning(f"{colour.value} {broken.kind}", "%s (request %s)", broken, exchange.request_id)
            raise
        finally:
            await opened.close()
            self._end_attempt(exchange, colour)
            exchange.status = opened.status
            if opened.ttft_s is not None:  # from the request's start: a retried request's includes the first try
                exchange.ttft_s = exchange.attempt_started - exchange.started + opened.ttft_s
            if record or not ok:
                self._record(colour, exchange.path, opened.status, time.perf_counter() - exchange.attempt_started,
                             opened.ttft_s, ok=ok and opened.status < 500)

    async def _answer_failure(self, exchange: Exchange, colour: Colour, failure: UpstreamFailure, send: Send) -> None:
        """No backend could answer: pass a backend's own 5xx through, else answer 502/504."""
        if failure.response is not None:
            self._begin_attempt(exchange, colour)
            return await self._pass_through(exchange, colour, failure.response, send, record=False)
        exchange.status = failure.status
        message = f"the {colour.value} backend could not answer: {failure.detail}"
        await send_json(send, failure.status, error_body(message, "upstream_unavailable"),
                        [(b"x-backend", colour.value.encode()), *exchange.extra_response_headers])

    def _begin_attempt(self, exchange: Exchange, colour: Colour) -> None:
        self.budget.started(colour, exchange.is_retry)
        self.metrics.attempt_started(colour.value)

    def _end_attempt(self, exchange: Exchange, colour: Colour) -> None:
        self.budget.finished(colour, exchange.is_retry)
        self.metrics.attempt_finished(colour.value)

    def _record(self, colour: Colour, path: str, status: int, latency_s: float, ttft_s: float | None, ok: bool) -> None:
        self.windows[colour].add(ok, latency_s, ttft_s)
        self.metrics.observe_attempt(colour.value, path, status, latency_s, ttft_s)


def _too_large(limit: int) -> RequestRefused:
    message = f"request body is larger than the {limit}-byte limit; shorten the question or context"
    return RequestRefused(413, "body_too_large", error_body(message, "request_too_large"))


def _named_in_connection(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Headers a client marks hop-by-hop by listing them in `Connection` (RFC 9110 §7.6.1)."""
    named = [token.strip().lower() for name, value in headers if name.lower() == b"connection" for token in value.split(b",")]
    return frozenset(named)


def _target(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
