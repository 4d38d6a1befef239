"""Calls to one backend: open a request until its first body chunk, then hand out the rest.

The first chunk is awaited before the client hears anything, so a backend that fails before it
(connect error, 5xx, silence past the first-byte timeout) can still be retried on the other colour.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import AsyncIterator

import httpx

from router.config import TimeoutOptions


class UpstreamFailure(Exception):
    """A backend attempt that failed before its first body chunk."""

    def __init__(self, kind: str, detail: str, status: int = 502, response: "OpenResponse | None" = None) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status, self.response = kind, detail, status, response


class StreamBroken(Exception):
    """The backend stopped or went silent after the client already had part of the answer."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass
class OpenResponse:
    """A backend response whose headers (and first chunk, when it has a body) have arrived."""

    status: int
    headers: list[tuple[bytes, bytes]]
    first_chunk: bytes
    ttft_s: float | None
    _response: httpx.Response
    _chunks: AsyncIterator[bytes]
    _idle_s: float

    async def rest(self) -> AsyncIterator[bytes]:
        """The remaining chunks, each within the idle timeout."""
        while True:
            try:
                async with asyncio.timeout(self._idle_s):
                    chunk = await anext(self._chunks, None)
            except TimeoutError as exc:
                raise StreamBroken("idle_timeout", f"no data for {self._idle_s:g} s in the middle of the answer") from exc
            except httpx.HTTPError as exc:
                raise StreamBroken("broken", f"the backend broke off the answer: {exc!r}") from exc
            if chunk is None:
                return
            yield chunk

    async def close(self) -> None:
        """Close the backend response; an unfinished one closes its connection instead of pooling it."""
        await self._response.aclose()


class Upstream:
    """One backend colour: a pooled HTTP/1.1 client and the split timeouts."""

    def __init__(self, base_url: str, timeouts: TimeoutOptions, max_connections: int) -> None:
        self.base_url = base_url
        self.timeouts = timeouts
        # No read timeout here: first byte and idle time are enforced per phase below.
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=timeouts.connect_s, read=None, write=timeouts.idle_s, pool=timeouts.connect_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def open(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> OpenResponse:
        started = time.perf_counter()
        request = self.client.build_request(method, self.base_url + target, headers=headers, content=body)
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.timeouts.first_byte_s):
                response = await self.client.send(request, stream=True)
                chunks = response.aiter_raw()
                first = await anext(chunks, b"")
        except TimeoutError as exc:
            await _close(response)
            raise UpstreamFailure("first_byte_timeout", f"no answer within {self.timeouts.first_byte_s:g} s", 504) from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise UpstreamFailure("connect", f"cannot connect to {self.base_url}: {exc!r}") from exc
        except httpx.HTTPError as exc:
            await _close(response)
            raise UpstreamFailure("broken", f"the backend broke off before answering: {exc!r}") from exc
        except BaseException:
            await _close(response)
            raise
        opened = OpenResponse(response.status_code, list(response.headers.raw), first,
                              time.perf_counter() - started if first else None, response, chunks, self.timeouts.idle_s)
        if response.status_code >= 500:
            raise UpstreamFailure("status", f"the backend answered {response.status_code}", response.status_code, opened)
        return opened


async def _close(response: httpx.Response | None) -> None:
    if response is not None:
        await response.aclose()
