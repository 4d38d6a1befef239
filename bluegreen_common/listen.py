"""Serve an ASGI app on sockets bound before anything else starts.

uvicorn binds its port only after the app's lifespan has run: a second `serve` on a port in use
would first start backends (or load a model) and only then fail. Binding first makes a busy port
a one-line error that touches nothing. The sockets listen only once serving starts, so until the
app is ready a client is refused at once rather than left hanging.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

log = logging.getLogger("bluegreen.listen")


class PortUnavailable(Exception):
    """The address cannot be bound (in use, not local, or not permitted)."""


def bind(host: str, port: int) -> list[socket.socket]:
    """TCP sockets bound to every address `host` names (as asyncio would: "" means all; IPv6 sockets
    IPv6 only; a family the kernel lacks is skipped), or PortUnavailable saying why and what to do."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound: list[socket.socket] = []
    unsupported: OSError | None = None
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):  # resolvers may repeat an address
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:  # no IPv6 in this kernel, say
                unsupported = exc
                continue
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in bound:
            sock.close()
        hint = "; is another server running there? stop it or pick another --port" \
            if exc.errno == errno.EADDRINUSE else ""
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    if not bound:
        reason = unsupported.strerror if unsupported is not None else "no address"
        raise PortUnavailable(f"cannot listen on {host}:{port}: {reason}")
    return bound


def where(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def serve(app: Any, sockets: list[socket.socket], **options: Any) -> None:
    """Run uvicorn on the already bound `sockets` (options as for uvicorn.Config)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # uvicorn says where it listens only for sockets it bound itself
                log.info("listening on %s", ", ".join(where(sock) for sock in sockets or []))

    host, port = sockets[0].getsockname()[:2]
    Server(uvicorn.Config(app, host=host, port=port, **options)).run(sockets=sockets)
