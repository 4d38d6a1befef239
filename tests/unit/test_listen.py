"""Binding before serving: every address a host names, a busy port in one line, nothing listening early."""

from __future__ import annotations

import socket

import pytest

from bluegreen_common.listen import PortUnavailable, bind, where


def test_a_bound_port_refuses_connections_until_serving_starts() -> None:
    (sock,) = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        assert where(sock) == f"http://127.0.0.1:{port}"
    finally:
        sock.close()


def test_a_busy_port_is_one_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortUnavailable, match=f"cannot listen on 127.0.0.1:{port}: .*pick another --port"):
            bind("127.0.0.1", port)


def test_all_addresses_and_ipv6_only_on_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    sockets = bind("", 0)
    try:
        families = {sock.family for sock in sockets}
        assert socket.AF_INET in families
        for sock in sockets:
            if sock.family == socket.AF_INET6:
                assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
                assert where(sock).startswith("http://[::]:")
    finally:
        for sock in sockets:
            sock.close()


def test_a_family_the_kernel_lacks_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket

    def no_ipv6(family: int = socket.AF_INET, *args: object) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(97, "Address family not supported by protocol")
        return real(family, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("bluegreen_common.listen.socket.socket", no_ipv6)
    monkeypatch.setattr("bluegreen_common.listen.socket.getaddrinfo", lambda *a, **k: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::", 0, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))])
    (sock,) = bind("", 0)
    assert sock.family == socket.AF_INET
    sock.close()
    monkeypatch.setattr("bluegreen_common.listen.socket.getaddrinfo", lambda *a, **k: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::", 0, 0, 0))])
    with pytest.raises(PortUnavailable, match="Address family not supported"):
        bind("::", 0)
