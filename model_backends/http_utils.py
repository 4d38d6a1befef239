"""HTTP plumbing shared by the chat routes: errors, SSE framing, disconnect and deadline races."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse

from bluegreen_common.http_errors import error_body
from model_backends.errors import ClientGone, CompletionError

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


def error_response(exc: CompletionError) -> JSONResponse:
    return JSONResponse(error_body(exc.message, exc.type, exc.param, exc.code), exc.status, headers=exc.headers)


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def guarded(request: Request, deadline: float, work: Awaitable[T]) -> T:
    """Await `work` unless the client disconnects (ClientGone) or the deadline passes (504)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        done, _ = await asyncio.wait({task, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if watcher in done:
        raise ClientGone()
    raise CompletionError(504, "the model did not answer within the request timeout", "timeout")


async def sse_stream(events: AsyncIterator[bytes], deadline: float, request: Request) -> AsyncIterator[bytes]:
    """Frame a route's events for the wire: within the deadline, a failure after the 200 is sent
    becomes an error event (and counts as failed in /stats), and `[DONE]` always ends the stream."""
    try:
        async with asyncio.timeout_at(deadline):
            async for event in events:
                yield event
    except TimeoutError:
        request.state.failed = True
        yield sse(error_body("the model did not answer within the request timeout", "timeout"))
    except CompletionError as exc:
        request.state.failed = True
        yield sse(error_body(exc.message, exc.type, exc.param, exc.code))
    yield sse("[DONE]")
