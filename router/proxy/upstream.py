"""Calls to one backend: open a request until its first body chunk, then hand out the rest.

The first chunk is awaited before the client hears anything, so a backend that fails before it
(connect error, 5xx, silence past the first-byte timeout) can still be retried on the other colour.
Two HTTP clients can carry the calls: `http1` (the lean default, `router/http1.py`) and `httpx`
(kept as the general-purpose reference; `scripts/bench_router.py` measures both).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Literal, Protocol
from urllib.parse import urlsplit

import httpx

from router.config import TimeoutOptions
from router.errors import ConnectFailed, ConnectionBroken, StreamBroken, UpstreamFailure
from router.proxy.http1 import ConnectionPool

ClientName = Literal["http1", "httpx"]


class ClientResponse(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    @property
    def buffered(self) -> bool:
        """The next chunk or the end has arrived already."""

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class Client(Protocol):
    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> ClientResponse: ...

    async def aclose(self) -> None: ...


class _HttpxResponse:
    buffered = False

    def __init__(self, response: httpx.Response) -> None:
        self.status, self.headers, self._response = response.status_code, list(response.headers.raw), response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise ConnectionBroken(repr(exc)) from exc

    async def close(self) -> None:
        await self._response.aclose()


class HttpxClient:
    """The same calls through httpx (for comparison; no read timeout: the caller enforces them)."""

    def __init__(self, base_url: str, timeouts: TimeoutOptions, max_connections: int) -> None:
        self.base_url = base_url
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=timeouts.connect_s, read=None, write=timeouts.idle_s, pool=timeouts.connect_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections))

    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> ClientResponse:
        request = self._client.build_request(method, self.base_url + target, headers=headers, content=body)
        try:
            return _HttpxResponse(await self._client.send(request, stream=True))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ConnectFailed(f"cannot connect to {self.base_url}: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise ConnectionBroken(repr(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def make_client(name: ClientName, base_url: str, timeouts: TimeoutOptions, max_connections: int) -> Client:
    if name == "httpx":
        return HttpxClient(base_url, timeouts, max_connections)
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.path not in ("", "/"):
        raise ValueError(f"the http1 client needs a plain http://host:port backend URL, not {base_url}; "
                         "use upstream_client: httpx for https or a path prefix")
    return ConnectionPool(parts.hostname or "127.0.0.1", parts.port or 80, max_connections, timeouts.connect_s)


class OpenResponse:
    """A backend response whose headers (and first chunk, when it has a body) have arrived."""

    def __init__(self, response: ClientResponse, chunks: AsyncIterator[bytes], first_chunk: bytes,
                 ttft_s: float | None, idle_s: float) -> None:
        self.status, self.headers = response.status, response.headers
        self.first_chunk, self.ttft_s = first_chunk, ttft_s
        self._response, self._chunks, self._idle_s = response, chunks, idle_s

    async def pieces(self) -> AsyncIterator[tuple[bytes, bool]]:
        """The body from the first chunk on, as (data, is_last). What has arrived already goes out as
        one piece (one write to the client, not one per backend chunk), and the end of the answer
        travels with its last data; nothing waits for more than has arrived."""
        pending = [self.first_chunk]
        ended = not self.first_chunk  # an answer without a body has ended already
        while not ended:
            while self._response.buffered:  # common for short answers: no wait, no timer
                chunk = await self._next(timed=False)
                if chunk is None:
                    ended = True
                    break
                pending.append(chunk)
            if ended:
                break
            if pending:
                yield b"".join(pending), False
                pending = []
            chunk = await self._next(timed=True)
            if chunk is None:
                ended = True
            else:
                pending.append(chunk)
        yield b"".join(pending), True

    async def _next(self, timed: bool) -> bytes | None:
        """The next chunk (None at the end), within the idle timeout when it may have to be waited for."""
        try:
            if not timed:
                return await anext(self._chunks, None)
            async with asyncio.timeout(self._idle_s):
                return await anext(self._chunks, None)
        except TimeoutError as exc:
            raise StreamBroken("idle_timeout", f"no data for {self._idle_s:g} s in the middle of the answer") from exc
        except ConnectionBroken as exc:
            raise StreamBroken("broken", f"the backend broke off the answer: {exc}") from exc

    async def close(self) -> None:
        """Close the backend response; an unfinished one closes its connection instead of pooling it."""
        await self._response.close()


class Upstream:
    """One backend colour: its client and the split timeouts."""

    def __init__(self, base_url: str, timeouts: TimeoutOptions, max_connections: int, client: ClientName = "http1") -> None:
        self.base_url = base_url
        self.timeouts = timeouts
        self.client = make_client(client, base_url, timeouts, max_connections)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def open(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> OpenResponse:
        started = time.perf_counter()
        response: ClientResponse | None = None
        try:
            async with asyncio.timeout(self.timeouts.first_byte_s):
                response = await self.client.request(method, target, headers, body)
                chunks = response.chunks()
                first = await anext(chunks, b"")
        except TimeoutError as exc:
            await _close(response)
            raise UpstreamFailure("first_byte_timeout", f"no answer within {self.timeouts.first_byte_s:g} s", 504) from exc
        except ConnectFailed as exc:
            raise UpstreamFailure("connect", str(exc)) from exc
        except ConnectionBroken as exc:
            await _close(response)
            raise UpstreamFailure("broken", f"the backend broke off before answering: {exc}") from exc
        except BaseException:
            await _close(response)
            raise
        opened = OpenResponse(response, chunks, first, time.perf_counter() - started if first else None, self.timeouts.idle_s)
        if response.status >= 500:
            raise UpstreamFailure("status", f"the backend answered {response.status}", response.status, opened)
        return opened


async def _close(response: ClientResponse | None) -> None:
    if response is not None:
        await response.close()
