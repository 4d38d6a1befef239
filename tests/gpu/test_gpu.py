"""Vistral's real path on CUDA: the transformers engine at fp16, 8-bit and 4-bit (bitsandbytes).

A generated ~222 M parameter Mistral (`make-tiny-models --size medium`: random weights, the tiny
tokenizer) is served by `model-backend serve --engine transformers` once per precision, one process
at a time so each has the GPU to itself; each answers the legal and the OpenAI routes, streamed and
not, and reports GPU memory in `/stats` and `/metrics`. Then the loading cascade: fp16 → 8-bit →
4-bit → GGUF under a `max_memory` cap too small for the specs before the one that should serve.

Measurements (load time, weights and GPU memory, time to first token, tokens/s of one stream, the
cascade's attempts) go to `gpu-report.json` in `$OUT` when OUT is set, else in `runs/gpu/`, with the
backends' logs; the same as a table goes to `gpu-report.txt` and the terminal. Run with `pytest -m gpu tests/gpu` or `scripts/gpu_check.sh run`; without
CUDA the module is skipped, saying why. Speed is measured, never asserted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from testkit.services import BackendProcess

if TYPE_CHECKING:
    from model_backends.tiny.build import TinyModels

torch = pytest.importorskip("torch", reason="the GPU tests need torch built with CUDA")

# Every test of the module is skipped (collected, so a run without CUDA exits 0) with the reason.
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here (torch.cuda.is_available() is false): the GPU tests need one")]

REPO = Path(__file__).resolve().parents[2]
OUT = Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "runs" / "gpu"
PRECISIONS = {"fp16": "none", "8bit": "8bit", "4bit": "4bit"}  # name in the report -> transformers.quantization
QUESTION = "Что такое договор аренды?"
STREAM_TOKENS = 128
STREAM_RUNS = 3
LOAD_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    from model_backends.tiny.sized import build_sized_models  # transformers: imported only when the tests run
    from model_backends.tiny.spec import ModelSize

    return build_sized_models(tmp_path_factory.mktemp("medium"), ModelSize.medium)


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest, medium: TinyModels) -> Iterator[dict[str, Any]]:
    """Filled by the tests; written and printed once they are done, whatever passed."""
    manifest = json.loads(medium.manifest_path.read_text())
    results: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
        "bitsandbytes": _version("bitsandbytes"), "transformers": _version("transformers"),
        "model": {k: manifest[k] for k in ("name", "parameters", "dtype", "safetensors_bytes", "build_seconds")},
        "precisions": {}, "cascade": {},
    }
    yield results
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gpu-report.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    table = "\n".join(_table(results))
    (OUT / "gpu-report.txt").write_text(table + "\n")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + table)


@pytest.fixture(scope="module")
def logs_dir() -> Path:
    return OUT / "logs"


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def _table(results: dict[str, Any]) -> list[str]:
    lines = [f"GPU: {results['gpu']}, torch {results['torch']} (CUDA {results['cuda']}), "
             f"bitsandbytes {results['bitsandbytes']}; model {results['model']['parameters']:,} parameters",
             f"{'precision':<10}{'load s':>8}{'ready s':>9}{'weights MiB':>13}{'GPU alloc MiB':>15}"
             f"{'GPU peak MiB':>14}{'TTFT ms':>9}{'tokens/s':>10}"]
    for name, p in results["precisions"].items():
        lines.append(f"{name:<10}{p['load_time_s']:>8.2f}{p['ready_wall_s']:>9.1f}{p['weights_mb']:>13.1f}"
                     f"{p['gpu_allocated_mb']:>15.1f}{p['gpu_peak_mb']:>14.1f}{p['ttft_ms']:>9.1f}"
                     f"{p['tokens_per_s']:>10.1f}")
    for case, c in results["cascade"].items():
        steps = " → ".join(f"{a['label']}: {'serves' if a['error'] is None else 'failed'}" for a in c["attempts"])
        lines.append(f"cascade {case} (max_memory {c['max_memory']}): {steps}")
    return lines


def _start(name: str, args: list[str], env: dict[str, str], logs_dir: Path) -> BackendProcess:
    backend = BackendProcess(["--model-name", f"medium-{name}", *args], logs_dir / f"{name}.log", env=env)
    backend.start()
    return backend


def _sse(response: httpx.Response) -> Iterator[tuple[float, Any]]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[6:]
            yield time.perf_counter(), payload if payload == "[DONE]" else json.loads(payload)


def _legal_stream(url: str) -> dict[str, float]:
    """One stream of exactly STREAM_TOKENS tokens: time to the first text and the decoding rate after it."""
    body = {"question": QUESTION, "stream": True, "max_tokens": STREAM_TOKENS, "ignore_eos": True, "temperature": 0}
    started = time.perf_counter()
    first: float | None = None
    done: dict[str, Any] = {}
    finished = started
    with httpx.stream("POST", url + "/api/v1/chat/legal", json=body, timeout=120) as response:
        assert response.status_code == 200
        for at, event in _sse(response):
            if isinstance(event, dict) and event.get("delta") and first is None:
                first = at
            if isinstance(event, dict) and event.get("done"):
                done, finished = event, at
    assert first is not None and done.get("finish_reason") == "length", done
    assert done["usage"]["completion_tokens"] == STREAM_TOKENS
    return {"ttft_s": first - started, "tokens_per_s": STREAM_TOKENS / (finished - started),
            "decode_tokens_per_s": (STREAM_TOKENS - 1) / max(finished - first, 1e-9)}


def _check_the_api(url: str, engine: str) -> None:
    """The legal and the OpenAI routes, streamed and not, answer from this engine."""
    answer = httpx.post(url + "/api/v1/chat/legal", timeout=120, json={
        "question": QUESTION, "max_tokens": 24, "ignore_eos": True, "temperature": 0}).json()
    assert (answer["engine"], answer["finish_reason"], answer["usage"]["completion_tokens"]) == (engine, "length", 24)
    assert answer["answer"].strip()
    chat = httpx.post(url + "/v1/chat/completions", timeout=120, json={
        "model": "any", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 16, "ignore_eos": True})
    assert chat.status_code == 200 and chat.json()["usage"]["completion_tokens"] == 16
    with httpx.stream("POST", url + "/v1/chat/completions", timeout=120, json={
            "model": "any", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 16,
            "ignore_eos": True, "stream": True}) as response:
        events = [event for _, event in _sse(response)]
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])
    assert text.strip()


def _gpu_metrics(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics").text
    return {sample.name + (f"/{sample.labels['device']}" if "device" in sample.labels else ""): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name.startswith(("model_backend_gpu_memory", "model_backend_weights_bytes"))}


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_each_precision_serves_the_api_and_reports_gpu_memory(
    precision: str, medium: TinyModels, report: dict[str, Any], logs_dir: Path
) -> None:
    env = {"MODEL_BACKEND_TRANSFORMERS__DEVICE": "cuda", "MODEL_BACKEND_TRANSFORMERS__DTYPE": "float16",
           "MODEL_BACKEND_TRANSFORMERS__QUANTIZATION": PRECISIONS[precision]}
    started = time.perf_counter()
    backend = _start(precision, ["--engine", "transformers", "--model", str(medium.hf_dir)], env, logs_dir)
    try:
        ready = backend.wait_ready(timeout_s=LOAD_TIMEOUT_S)
        ready_wall_s = time.perf_counter() - started
        assert (ready["engine"], ready["details"]["device"]) == ("transformers", "cuda")
        assert ready["details"]["quantization"] == PRECISIONS[precision]
        loaded = httpx.get(backend.url + "/stats").json()["memory"]
        _check_the_api(backend.url, "transformers")
        streams = [_legal_stream(backend.url) for _ in range(STREAM_RUNS)]
        after = httpx.get(backend.url + "/stats").json()["memory"]
        series = _gpu_metrics(backend.url)
    finally:
        backend.stop()
    gpu = loaded["gpu"][0]
    assert loaded["weights_mb"] > 0 and gpu["allocated_mb"] >= 0.9 * loaded["weights_mb"]
    assert gpu["reserved_mb"] >= gpu["allocated_mb"] and after["gpu"][0]["max_allocated_mb"] >= gpu["allocated_mb"]
    assert series["model_backend_gpu_memory_allocated_bytes/0"] > 0
    assert series["model_backend_gpu_memory_total_bytes/0"] >= series["model_backend_gpu_memory_reserved_bytes/0"]
    assert abs(series["model_backend_weights_bytes"] / 2**20 - loaded["weights_mb"]) < 0.1
    report["precisions"][precision] = {
        "load_time_s": ready["load_time_s"], "warmup_s": ready["warmup_s"], "ready_wall_s": round(ready_wall_s, 2),
        "weights_mb": loaded["weights_mb"], "gpu_allocated_mb": gpu["allocated_mb"],
        "gpu_reserved_mb": gpu["reserved_mb"], "gpu_peak_mb": after["gpu"][0]["max_allocated_mb"],
        "ttft_ms": round(statistics.median(s["ttft_s"] for s in streams) * 1000, 1),
        "tokens_per_s": round(statistics.median(s["tokens_per_s"] for s in streams), 1),
        "decode_tokens_per_s": round(statistics.median(s["decode_tokens_per_s"] for s in streams), 1),
        "stream_tokens": STREAM_TOKENS, "streams": STREAM_RUNS,
    }


def test_quantized_weights_take_a_fraction_of_fp16(report: dict[str, Any]) -> None:
    measured = report["precisions"]
    if set(measured) != set(PRECISIONS):
        pytest.fail(f"a precision did not load, so nothing to compare: measured {sorted(measured)}")
    fp16 = measured["fp16"]["weights_mb"]
    ratios = {name: measured[name]["weights_mb"] / fp16 for name in ("8bit", "4bit")}
    report["weights_ratio_to_fp16"] = {name: round(r, 3) for name, r in ratios.items()}
    assert ratios["8bit"] <= 0.6, ratios
    assert ratios["4bit"] <= 0.35, ratios


# Each case caps GPU 0 at a share of the fp16 checkpoint's size: too small for fp16 (which would
# offload to the disk), then for 8-bit too (~0.56 with accelerate's 10 % margin), then for 4-bit.
CASCADE = {"8bit": 0.75, "4bit": 0.45, "gguf": 0.12}


def _cascade_config(models: TinyModels, budget_mib: int, path: Path) -> Path:
    caps = {"0": f"{budget_mib}MiB"}

    def transformers(quantization: str) -> dict[str, Any]:
        return {"engine": "transformers", "model": str(models.hf_dir), "transformers": {
            "device": "cuda", "dtype": "float16", "quantization": quantization, "max_memory": caps}}

    settings = {**transformers("none"), "fallbacks": [
        transformers("8bit"), transformers("4bit"),
        {"engine": "llama_cpp", "model": str(models.gguf_path), "llama_cpp": {"n_gpu_layers": -1, "n_ctx": 2048}},
    ]}
    path.write_text(yaml.safe_dump(settings))
    return path


def _wait_settled(url: str) -> dict[str, Any]:
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            body: dict[str, Any] = httpx.get(url + "/ready", timeout=5).json()
            if body["status"] in ("ready", "failed"):
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} neither ready nor failed after {LOAD_TIMEOUT_S}s")


@pytest.mark.parametrize("case", list(CASCADE))
def test_cascade_falls_back_under_a_gpu_memory_cap(
    case: str, medium: TinyModels, report: dict[str, Any], logs_dir: Path, tmp_path: Path
) -> None:
    budget_mib = int(CASCADE[case] * json.loads(medium.manifest_path.read_text())["safetensors_bytes"] / 2**20)
    config = _cascade_config(medium, budget_mib, tmp_path / "cascade.yaml")
    backend = _start(f"cascade-{case}", ["--config", str(config)], {}, logs_dir)
    try:
        ready = _wait_settled(backend.url)
        served = httpx.get(backend.url + "/stats").json() if ready["ready"] else None
        if ready["ready"]:
            _check_the_api(backend.url, ready["engine"])
    finally:
        backend.stop()
    attempts = [{**a, "label": f"{a['engine']} ({a['quantization']})" if a["quantization"] else a["engine"]}
                for a in ready["attempts"]]
    report["cascade"][case] = {"max_memory": f"{budget_mib}MiB", "serving": ready["engine"], "reason": ready["reason"],
                               "attempts": attempts, "weights_mb": served and served["memory"]["weights_mb"]}
    labels = [a["label"] for a in attempts]
    failed_first = {"8bit": 1, "4bit": 2, "gguf": 3}[case]
    assert len(attempts) > failed_first - 1 and all(a["error"] for a in attempts[:failed_first]), attempts
    assert labels[:failed_first] == ["transformers (none)", "transformers (8bit)", "transformers (4bit)"][:failed_first]
    assert any(word in attempts[0]["error"] for word in ("max_memory", "offload", "disk")), attempts[0]
    if case in ("8bit", "4bit"):
        assert ready["ready"] and labels[-1] == f"transformers ({case})" and attempts[-1]["error"] is None, attempts
        assert ready["details"]["quantization"] == case
        assert served is not None and served["memory"]["weights_mb"] <= budget_mib  # the cap held
    elif importlib.util.find_spec("llama_cpp") is not None:
        assert ready["ready"] and ready["engine"] == "llama_cpp", attempts
    else:  # this machine has no llama-cpp-python: the GGUF step is tried and says so
        assert not ready["ready"] and len(attempts) == 4 and "llama-cpp-python" in attempts[3]["error"], attempts
