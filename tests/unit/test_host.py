"""The engine host: a load that fails in a way no engine foresaw still ends, and /ready says why."""

from __future__ import annotations

import pytest

from model_backends import host
from model_backends.config import BackendConfig
from model_backends.engines import LoadAttempt
from model_backends.engines.base import Engine


def test_an_unexpected_load_error_fails_the_host_with_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # A library raising its own exception type mid-load is a bug path that cannot be caused on purpose here.
    def explode(*_args: object) -> tuple[Engine, list[LoadAttempt]]:
        raise RuntimeError("CUDA driver initialisation failed")

    monkeypatch.setattr(host, "load_first_working", explode)
    engine_host = host.EngineHost(BackendConfig(engine="mock", allow_mock=True))
    engine_host.load_blocking()
    described = engine_host.describe()
    assert described["status"] == "failed" and described["ready"] is False
    assert described["reason"] == "model load failed unexpectedly: RuntimeError: CUDA driver initialisation failed"
