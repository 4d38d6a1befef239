"""A lean HTTP/1.1 client for the proxy's hot path: pooled keep-alive connections to one backend.

General-purpose clients spend most of a proxied request's CPU on their own abstractions; this one
is an asyncio Protocol feeding the `httptools` parser (the one uvicorn serves with). It does what
the proxy needs and no more: send a buffered request, hand back status and headers, then the body
chunk by chunk with back-pressure; reuse a connection only after a complete response.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import httptools

from router.errors import ConnectFailed, ConnectionBroken

HIGH_WATER = 256 * 1024  # buffered body bytes before reading from the backend pauses


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = asyncio.get_running_loop().create_future()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._readable = asyncio.Event()
        self._complete = False
        self._error: Exception | None = None
        self._received_any = False
        self._paused = False
        self._keep_alive = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"invalid HTTP from the backend: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._complete:
            self._fail(ConnectionBroken(f"the backend closed the connection{f': {exc}' if exc else ''}",
                                        before_response=not self._received_any))

    # -- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()  # only valid until the message completes
        if not self._head.done():
            self._head.set_result((self._parser.get_status_code(), self._headers))

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        self._readable.set()
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        self._complete = True
        self._readable.set()

    # -- use by the pool --------------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        self._error = error
        if not self._head.done():
            self._head.set_exception(error)
        self._readable.set()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return self._complete and not self.closed and self._keep_alive

    @property
    def has_buffered(self) -> bool:
        return bool(self._chunks) or self._complete or self._error is not None

    async def exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
        self._reset()
        assert self.transport is not None
        self.transport.write(request)
        return await self._head

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < HIGH_WATER // 2 and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                yield chunk
            if self._complete:
                return
            if self._error is not None:
                raise self._error
            self._readable.clear()
            await self._readable.wait()


class Response:
    """Status and headers of a backend answer; the body is read with `chunks()`, then `close()`."""

    def __init__(self, pool: ConnectionPool, connection: _Connection, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status, self.headers = status, headers
        self._pool, self._connection = pool, connection
        self._released = False

    def chunks(self) -> AsyncIterator[bytes]:
        return self._connection.body()

    @property
    def buffered(self) -> bool:
        """True when the next chunk (or the end) is already here, so no wait needs a timer."""
        return self._connection.has_buffered

    async def close(self) -> None:
        """Return the connection to the pool after a complete answer; otherwise close it."""
        if not self._released:
            self._released = True
            self._pool.release(self._connection)


class ConnectionPool:
    def __init__(self, host: str, port: int, max_idle: int, connect_timeout_s: float) -> None:
        self.host, self.port = host, port
        self.max_idle = max_idle
        self.connect_timeout_s = connect_timeout_s
        self._idle: deque[_Connection] = deque()
        self._host_header = f"{host}:{port}".encode()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc or 'timed out'}") from exc
        return connection

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    def release(self, connection: _Connection) -> None:
        if connection.reusable and len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()

    def encode(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        lines = [f"{method} {target} HTTP/1.1".encode(), b"host: " + self._host_header,
                 b"content-length: " + str(len(body)).encode()]
        lines += [name + b": " + value for name, value in headers]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Response:
        """Send the request; a reused connection that turns out closed is replaced once by a new one."""
        payload = self.encode(method, target, headers, body)
        connection = self._idle_connection()
        if connection is not None:
            try:
                status, head = await connection.exchange(payload)
                return Response(self, connection, status, head)
            except ConnectionBroken as exc:
                connection.close()
                if not exc.before_response:
                    raise
            except BaseException:
                connection.close()
                raise
        connection = await self._connect()
        try:
            status, head = await connection.exchange(payload)
        except BaseException:
            connection.close()
            raise
        return Response(self, connection, status, head)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
