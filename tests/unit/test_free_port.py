"""Ports for servers the tests and the local runtime start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bluegreen_common.processes import LOWEST_PORT, ephemeral_ports, free_port


def test_free_ports_are_below_the_range_clients_take_theirs_from() -> None:
    low, _ = ephemeral_ports()
    if low - LOWEST_PORT < 1_000:
        pytest.skip(f"this machine's outgoing range starts at {low}: free_port falls back to the kernel's choice")
    for _ in range(20):
        port = free_port()
        assert LOWEST_PORT <= port < low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", port))  # free indeed


def test_an_unreadable_range_falls_back_to_linuxs_default(tmp_path: Path) -> None:
    assert ephemeral_ports(tmp_path / "missing") == (32_768, 60_999)
    (tmp_path / "range").write_text("40000\t50000\n")
    assert ephemeral_ports(tmp_path / "range") == (40_000, 50_000)
