"""Both programs' OpenAPI documents tell the truth: schemathesis (`--checks all`) finds no failure.

Live processes: a tiny llama backend with a short context (so a fuzzed `max_tokens: 4096` stays a
fraction of a second), and a router in front of it as blue and green, whose document also carries
the public routes it proxies. The router is fresh for the run, so rollouts and weight changes the
fuzzer makes touch nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_backends.tiny.build import TinyModels
from testkit.services import BackendProcess
from tests.e2e.helpers import AUTH

MAX_EXAMPLES = 30  # per operation and phase
RUN_TIMEOUT_S = 240

# A prompt longer than the model's context window, or messages the model's chat template cannot
# render, get 400: rules of the loaded model that no JSON Schema can state. Everything else that is
# schema-valid must be accepted.
CONFIG = """
[[operations]]
include-path-regex = "^/(api/v1/chat/legal|v1/chat/completions)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
"""

BACKEND_OPERATIONS = {"POST /api/v1/chat/legal", "POST /v1/chat/completions", "GET /v1/models", "GET /health",
                      "GET /ready", "GET /metrics", "GET /stats"}
ROUTER_OPERATIONS = {"GET /admin/status", "PUT /admin/weights", "GET /admin/events", "GET /admin/rollout",
                     "POST /admin/rollout", *(f"POST /admin/rollout/{action}" for action in
                                              ("pause", "resume", "promote", "confirm", "rollback")),
                     "PUT /admin/runtime/{colour}/model", "DELETE /admin/runtime/{colour}/model",
                     "POST /admin/events", "GET /admin/analytics", "GET /health", "GET /ready",
                     "GET /metrics", "POST /api/v1/chat/legal", "POST /v1/chat/completions", "GET /v1/models"}


class SchemathesisFailed(AssertionError):
    """The run found failures or errors, tested no operation, or did not finish."""


def schemathesis(url: str, workdir: Path, *options: str) -> dict:
    """Run `schemathesis run URL/openapi.json --checks all` and return its JSON report; raise unless it was clean."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    reports = workdir / "report"
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{url}/openapi.json",
               "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--request-timeout", "60",
               "--generation-database", "none", "--no-color", "--report", "json", "--report-dir", str(reports),
               *options]
    try:
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise SchemathesisFailed(f"schemathesis ran over {RUN_TIMEOUT_S} s:\n{exc.stdout!s:.3000}") from exc
    output = done.stdout[-6000:] + done.stderr[-2000:]
    found = sorted(reports.glob("*.json"))
    if len(found) != 1:
        raise SchemathesisFailed(f"no JSON report (exit {done.returncode}):\n{output}")
    report: dict = json.loads(found[0].read_text())
    if done.returncode != 0 or report["failures"] or report["errors"]:
        raise SchemathesisFailed(f"schemathesis exit {done.returncode}, failures {report['failures']}, "
                                 f"errors {report['errors']}:\n{output}")
    operations = report["operations"]
    if operations["tested"] == 0 or operations["tested"] != operations["selected"] \
            or report["test_cases"]["generated"] == 0:
        raise SchemathesisFailed(f"not every operation was tested: {operations}, {report['test_cases']}\n{output}")
    return report


def operations_of(report: dict) -> set[str]:
    return set(report["valid_rates"])


@pytest.fixture(scope="module")
def short_backend(tiny_models: TinyModels, logs_dir: Path) -> Iterator[BackendProcess]:
    """The llama engine with a 512-token context: any generation ends within a few hundred tokens."""
    args = ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path)]
    with BackendProcess(args, logs_dir / "openapi-backend.log", env={"MODEL_BACKEND_LLAMA_CPP__N_CTX": "512"}) as backend:
        yield backend


def test_the_backend_answers_as_its_document_says(short_backend: BackendProcess, tmp_path: Path) -> None:
    report = schemathesis(short_backend.url, tmp_path)
    assert operations_of(report) == BACKEND_OPERATIONS


def test_the_router_answers_as_its_document_says(short_backend: BackendProcess, start_router, tmp_path: Path) -> None:
    # One backend as blue and green; a probe slowed by the fuzzer's own load does not take it out of rotation.
    router = start_router(short_backend.url, short_backend.url, env={"BLUEGREEN_PROBES__FAILURES_TO_UNREADY": "3"})
    token = AUTH["Authorization"]
    report = schemathesis(router.url, tmp_path, "--header", f"Authorization: {token}")
    assert operations_of(report) == ROUTER_OPERATIONS


def test_a_failure_or_an_empty_run_fails_the_test(short_backend: BackendProcess, tmp_path: Path) -> None:
    with pytest.raises(SchemathesisFailed, match="failures"):  # every answer is slower than a nanosecond
        schemathesis(short_backend.url, tmp_path / "slow", "--include-path", "/health", "--max-response-time", "1e-9")
    with pytest.raises(SchemathesisFailed):
        schemathesis(short_backend.url, tmp_path / "none", "--include-path", "/no-such-route")
