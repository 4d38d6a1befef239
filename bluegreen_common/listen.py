"""Serve an ASGI app on a socket bound before anything else starts.

uvicorn binds its port only after the app's lifespan has run: a second `serve` on a port in use
would first start backends (or load a model) and only then fail. Binding first makes a busy port
a one-line error that touches nothing.
"""

from __future__ import annotations

import errno
import socket
from typing import Any


class PortUnavailable(Exception):
    """The address cannot be bound (in use, not local, or not permitted)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or PortUnavailable saying why and what to do."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = "; is another server running there? stop it or pick another --port" if exc.errno == errno.EADDRINUSE else ""
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    sock.set_inheritable(False)
    return sock


def serve(app: Any, sock: socket.socket, **options: Any) -> None:
    """Run uvicorn on the already bound `sock` (options as for uvicorn.Config)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options)).run(sockets=[sock])
