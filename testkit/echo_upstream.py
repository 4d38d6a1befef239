"""A deliberately fast upstream for proxy benchmarks: answers at once, so only the proxy is measured.

`POST` with `{"stream": true}` gets `events` SSE events (default 8), else a small JSON answer.
With `--fail-when PATH` every answer is 503 while that file exists (a drill switch for benchmarks).
Run: python -m testkit.echo_upstream --port 9001
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import uvicorn
from starlette.types import Receive, Scope, Send

from bluegreen_common.processes import ServiceProcess

ANSWER = json.dumps({"answer": "Договор — это соглашение двух или более лиц.", "usage": {"completion_tokens": 12}},
                    ensure_ascii=False).encode()
EVENT = 'data: {"delta": "слово "}\n\n'.encode()
FAIL_WHEN: str | None = None


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/ready":
        return await _json(send, b'{"ready": true}')
    if FAIL_WHEN and os.path.exists(FAIL_WHEN):
        return await _json(send, b'{"error": {"message": "failing on purpose"}}', status=503)
    request = json.loads(body or b"{}")
    if not request.get("stream"):
        return await _json(send, ANSWER)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for _ in range(int(request.get("events", 8))):
        await send({"type": "http.response.body", "body": EVENT, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _json(send: Send, payload: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class EchoUpstream(ServiceProcess):
    """This upstream as a process on a free port (extra flags such as --fail-when go in `args`)."""

    def command(self, port: int) -> list[str]:
        return [sys.executable, str(Path(__file__)), "--port", str(port)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-when", help="answer 503 while this file exists")
    args = parser.parse_args()
    global FAIL_WHEN
    FAIL_WHEN = args.fail_when
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
