"""What the admin API accepts as a body, checked before the framework reads it.

The admin API shares the public port. Left to the framework, a body of any size is read into memory
and decoded before the route (and its token check) runs, and a JSON body sent as a form (curl's
`-d` default) fails with a message about dictionaries. This wrapper answers 413 for a body over
`ADMIN_MAX_BODY_BYTES` without keeping it (reading and dropping the rest first, up to a cap, so that
a client still uploading gets to read the answer), and 415 for a body whose Content-Type is not JSON,
saying what to send instead. Bodies that pass are handed on unchanged.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from bluegreen_common.asgi_body import drain, read_body, replaying
from bluegreen_common.http_errors import ERROR_TYPES, error_body

ADMIN_MAX_BODY_BYTES = 64 * 1024  # the largest admin body is a weights change with its reason
DRAIN_MAX_BYTES = 8 * 1024 * 1024  # a refused body up to this size is read (and dropped) before the answer
DRAIN_MAX_S = 5.0  # ... if it arrives within this time
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json_media_type(content_type: str) -> bool:
    """application/json, or any application/*+json, whatever the parameters (charset)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def body_refusal(content_type: str | None, content_length: int | None) -> tuple[int, str] | None:
    """Pure: (status, message) for a body the admin API will not read, or None."""
    if content_length is not None and content_length > ADMIN_MAX_BODY_BYTES:
        return 413, (f"the admin API takes bodies up to {ADMIN_MAX_BODY_BYTES // 1024} KiB; this one is "
                     f"{content_length:,} bytes")
    if content_length != 0 and content_type is not None and not is_json_media_type(content_type):
        return 415, (f"the body must be JSON sent with 'Content-Type: application/json' (got {content_type!r}; "
                     "with curl, add -H 'Content-Type: application/json')")
    return None


class AdminBodyGuard:
    def __init__(self, app: ASGIApp, prefix: str = "/admin") -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        headers = {name.lower(): value for name, value in scope["headers"]}
        length = headers.get(b"content-length")
        content_type = headers.get(b"content-type")
        announced = int(length) if length is not None and length.isdigit() else None
        refusal = body_refusal(content_type.decode("latin-1") if content_type is not None else None, announced)
        if refusal is None and length is None:  # a chunked body has no length: read it here, up to the limit
            read = await read_body(receive, ADMIN_MAX_BODY_BYTES)
            if read.disconnected:
                return  # the client left mid-body: nothing to act on, nobody to answer
            if not read.too_big:
                return await self.app(scope, replaying(read.body, receive), send)
            refusal = 413, f"the admin API takes bodies up to {ADMIN_MAX_BODY_BYTES // 1024} KiB"
        if refusal is None:
            return await self.app(scope, receive, send)
        # Answer only once the client has sent what it is sending: closing on unread data resets the
        # connection, and a client still uploading then never reads the answer. A body past the cap
        # (or one the client holds back for a `100 Continue`) is not waited for: answer and close.
        waits = headers.get(b"expect", b"").lower() == b"100-continue"
        drained = (not waits and (announced is None or announced <= DRAIN_MAX_BYTES)
                   and await drain(receive, DRAIN_MAX_BYTES, DRAIN_MAX_S))
        await _answer(send, *refusal, close=not drained)


async def _answer(send: Send, status: int, message: str, close: bool) -> None:
    payload = json.dumps(error_body(message, ERROR_TYPES[status])).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + [(b"connection", b"close")] if close else headers})
    await send({"type": "http.response.body", "body": payload})
