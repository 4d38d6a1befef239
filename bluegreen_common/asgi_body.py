"""Reading a request body in ASGI middleware before the app does: bounded, then replayed.

Shared by the router's admin guard and the model backends' body limit. `read_body` reads up to a
limit and says whether the body was too big or the client left; `replaying` hands the body read to
the app as if it were arriving; `drain` reads and throws away what is left of a refused body, so
the refusal reaches a client that is still uploading (closing on unread data resets the connection,
and most clients then never read the answer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.types import Message, Receive


@dataclass(frozen=True)
class BodyRead:
    """What `read_body` got: the whole body, or why not (over the limit, or the client left)."""

    body: bytes = b""
    too_big: bool = False
    disconnected: bool = False


async def read_body(receive: Receive, limit: int) -> BodyRead:
    """The whole body when it is at most `limit` bytes; stops reading at the first byte over it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the body will never be whole
            return BodyRead(disconnected=True)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return BodyRead(too_big=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return BodyRead(b"".join(chunks))


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, whole, then passes on to `receive` (a disconnect, as apps expect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def drain(receive: Receive, cap: int, seconds: float) -> bool:
    """Read and discard the rest of the body: True once it has all been read, False if it is over
    `cap` bytes, takes over `seconds`, or the client leaves (then the connection should be closed)."""
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return False
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
                if size > cap:
                    return False
    except TimeoutError:
        return False
