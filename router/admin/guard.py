"""What the admin API accepts as a body, checked before the framework reads it.

The admin API shares the public port. Left to the framework, a body of any size is read into memory
and decoded before the route (and its token check) runs, and a JSON body sent as a form (curl's
`-d` default) fails with a message about dictionaries. This wrapper answers 413 for a body over
`ADMIN_MAX_BODY_BYTES` without keeping it, and 415 for a body whose Content-Type is not JSON,
saying what to send instead. Bodies that pass are handed on unchanged.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bluegreen_common.http_errors import ERROR_TYPES, error_body

ADMIN_MAX_BODY_BYTES = 64 * 1024  # the largest admin body is a weights change with its reason
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
        refusal = body_refusal(content_type.decode("latin-1") if content_type is not None else None,
                               int(length) if length is not None and length.isdigit() else None)
        if refusal is None:  # a chunked body has no length: read it here, up to the limit, and replay it
            body, refusal = await _read_bounded(receive) if length is None else (None, None)
            if body is not None and refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            return await _answer(send, *refusal)
        await self.app(scope, receive, send)


async def _read_bounded(receive: Receive) -> tuple[bytes | None, tuple[int, str] | None]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), None  # the client left: the route will see an empty body
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > ADMIN_MAX_BODY_BYTES:
            return None, (413, f"the admin API takes bodies up to {ADMIN_MAX_BODY_BYTES // 1024} KiB")
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: a disconnect, as the framework expects

    return replay


async def _answer(send: Send, status: int, message: str) -> None:
    payload = json.dumps(error_body(message, ERROR_TYPES[status])).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
