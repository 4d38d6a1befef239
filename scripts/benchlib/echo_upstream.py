"""A deliberately fast upstream for proxy benchmarks: answers at once, so only the proxy is measured.

`POST` with `{"stream": true}` gets `events` SSE events (default 8), else a small JSON answer.
Run: python scripts/benchlib/echo_upstream.py --port 9001
"""

from __future__ import annotations

import argparse
import json

import uvicorn

ANSWER = json.dumps({"answer": "Договор — это соглашение двух или более лиц.", "usage": {"completion_tokens": 12}},
                    ensure_ascii=False).encode()
EVENT = 'data: {"delta": "слово "}\n\n'.encode()


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        return await send({"type": "lifespan.shutdown.complete"})
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/ready":
        return await _json(send, b'{"ready": true}')
    request = json.loads(body or b"{}")
    if not request.get("stream"):
        return await _json(send, ANSWER)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for _ in range(int(request.get("events", 8))):
        await send({"type": "http.response.body", "body": EVENT, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _json(send, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
