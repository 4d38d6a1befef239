"""The real engines on the tiny models, called in-process, and the pure start-up checks."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import torch

from model_backends.chat_format import ChatFormat
from model_backends.config import BackendConfig, LlamaCppOptions, TransformersOptions
from model_backends.engines import load_first_working
from model_backends.engines.base import SamplingParams
from model_backends.engines.hf_transformers import (
    HFTransformersEngine,
    check_quantization,
    load_kwargs,
    offloaded,
    resolve_device,
)
from model_backends.engines.llama_cpp import LlamaCppEngine
from model_backends.errors import EngineError, EngineUnavailable
from model_backends.faults import FaultKind, choose_fault
from model_backends.prompts import legal_messages
from model_backends.stats import memory_usage
from model_backends.tiny.build import TinyModels, build_tiny_models
from model_backends.tiny.train import TinySpec
from tests.e2e.helpers import metric_total

GREEDY = SamplingParams(max_tokens=24, temperature=0.0, top_p=1.0)


def _run(engine, messages, params=GREEDY) -> tuple[str, int, str]:
    text, tokens, finish = "", 0, ""
    for piece in engine.stream(engine.prepare(messages), params, threading.Event()):
        text += piece.text
        tokens += piece.tokens
        finish = piece.finish_reason or finish
    return text, tokens, finish


@pytest.fixture(scope="module")
def engines(tiny_models: TinyModels):
    llama = LlamaCppEngine(str(tiny_models.gguf_path), LlamaCppOptions(), ChatFormat.auto, "blue")
    hf = HFTransformersEngine(str(tiny_models.hf_dir), TransformersOptions(device="cpu"), ChatFormat.auto, "green")
    llama.load()
    hf.load()
    yield llama, hf
    llama.close()
    hf.close()


@pytest.mark.parametrize("question", ["Что такое договор аренды?", "Какова ставка НДФЛ?", "Статья 105 УК РФ - что это?"])
def test_gguf_copy_is_faithful_token_for_token(engines, question: str) -> None:
    llama, hf = engines
    messages = legal_messages(question)
    prompt = llama.render(messages)
    assert prompt == hf.render(messages), "both engines must read the model's own chat template"
    assert llama.prepare(messages).token_ids == hf.prepare(messages).token_ids
    llama_answer, hf_answer = _run(llama, messages), _run(hf, messages)
    assert llama_answer == hf_answer
    assert llama_answer[1] > 0 and any("а" <= ch <= "я" for ch in llama_answer[0].lower())


def test_ignore_eos_generates_exactly_max_tokens(engines) -> None:
    params = SamplingParams(max_tokens=40, temperature=0.8, top_p=0.9, ignore_eos=True)
    for engine in engines:
        text, tokens, finish = _run(engine, legal_messages("Что такое кража?"), params)
        assert (tokens, finish) == (40, "length") and text


def test_cancel_stops_a_generation_early(engines) -> None:
    params = SamplingParams(max_tokens=1000, temperature=0.8, top_p=0.9, ignore_eos=True)
    for engine in engines:
        cancel = threading.Event()
        produced = 0
        for piece in engine.stream(engine.prepare(legal_messages("Что такое кража?")), params, cancel):
            produced += piece.tokens
            if produced >= 5:
                cancel.set()
            if piece.finish_reason:
                assert piece.finish_reason == "cancelled"
        assert produced < 50


def test_stop_sequences_end_the_answer_before_them(engines) -> None:
    """The text before the first stop sequence, without it, and finish_reason "stop"; a stop that
    the answer never contains changes nothing."""
    messages = legal_messages("Что такое кража?")
    long = SamplingParams(max_tokens=48, temperature=0.0, top_p=1.0, ignore_eos=True)
    for engine in engines:
        answer, tokens, finish = _run(engine, messages, long)
        assert (tokens, finish) == (48, "length")
        stop = answer[len(answer) // 2: len(answer) // 2 + 3]  # three characters from the middle
        cut = answer.index(stop)
        with_stop = replace(long, stop=("Ъ" * 5, stop))
        text, stopped_after, finish = _run(engine, messages, with_stop)
        assert (text, finish) == (answer[:cut], "stop"), engine.name
        assert 0 < stopped_after < 48
        assert _run(engine, messages, replace(long, stop=(answer[:2],)))[::2] == ("", "stop")
        assert _run(engine, messages, replace(long, stop=("Ъ" * 5,))) == (answer, 48, "length")


def test_llama_context_defaults_to_the_training_context(engines, tiny_models: TinyModels) -> None:
    llama, hf = engines
    info = llama.info()
    assert info.context_window == info.details["n_ctx_train"] == hf.info().context_window == 2048
    explicit = LlamaCppEngine(str(tiny_models.gguf_path), LlamaCppOptions(n_ctx=512), ChatFormat.auto, "blue")
    explicit.load()
    try:
        assert explicit.info().context_window == 512
    finally:
        explicit.close()


def test_tiny_build_is_deterministic(tmp_path: Path) -> None:
    spec = TinySpec(steps=4, vocab_size=600)
    first = build_tiny_models(tmp_path / "a", spec)
    second = build_tiny_models(tmp_path / "b", spec)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(first.gguf_path) == digest(second.gguf_path)
    assert digest(first.hf_dir / "model.safetensors") == digest(second.hf_dir / "model.safetensors")


def test_quantization_needs_cuda_and_says_so() -> None:
    with pytest.raises(EngineUnavailable, match="needs a CUDA GPU.*quantization: none"):
        check_quantization("8bit", "cpu")
    check_quantization("none", "cpu")
    assert resolve_device("auto", cuda_available=False) == "cpu"
    with pytest.raises(EngineUnavailable, match="no CUDA"):
        resolve_device("cuda", cuda_available=False)


def test_fallback_cascade_takes_the_first_engine_that_loads(tiny_models: TinyModels) -> None:
    """8-bit, then 4-bit (both refused on a CPU, saying why), then a missing GGUF, then the GGUF that serves."""
    config = BackendConfig(
        engine="transformers", model=str(tiny_models.hf_dir), transformers=TransformersOptions(quantization="8bit"),
        fallbacks=[{"engine": "transformers", "model": str(tiny_models.hf_dir), "transformers": {"quantization": "4bit"}},
                   {"engine": "llama_cpp", "model": "/nonexistent.gguf"},
                   {"engine": "llama_cpp", "model": str(tiny_models.gguf_path)}],
    )
    from model_backends.host import EngineHost

    engine, attempts = load_first_working(EngineHost(config).specs(), ChatFormat.auto, None, allow_mock=False)
    try:
        assert engine.name == "llama_cpp"
        assert [(a.label, a.error is None) for a in attempts] == [
            ("transformers (8bit)", False), ("transformers (4bit)", False), ("llama_cpp", False), ("llama_cpp", True)]
        assert all("quantization '" in a.error and "needs a CUDA GPU" in a.error for a in attempts[:2])
        assert "does not exist" in attempts[2].error and all(a.seconds >= 0 for a in attempts)
    finally:
        engine.close()


def test_gpu_load_settings_quantize_cap_memory_and_refuse_offload() -> None:
    """What `from_pretrained` gets on CUDA (built here without one) and the fit check after it."""
    caps = {"0": "20GiB", "cpu": "64GiB"}
    four = load_kwargs(TransformersOptions(quantization="4bit", max_memory=caps), "cuda", torch)
    assert (four["device_map"], four["max_memory"], four["dtype"]) == ("auto", {0: "20GiB", "cpu": "64GiB"}, torch.float16)
    q = four["quantization_config"]
    assert (q.load_in_4bit, q.load_in_8bit, q.bnb_4bit_quant_type, q.bnb_4bit_compute_dtype) == (True, False, "nf4", torch.float16)
    eight = load_kwargs(TransformersOptions(quantization="8bit", dtype="bfloat16"), "cuda", torch)
    assert eight["quantization_config"].load_in_8bit and not eight["quantization_config"].load_in_4bit
    assert "max_memory" not in eight and eight["dtype"] == torch.bfloat16
    on_cpu = load_kwargs(TransformersOptions(max_memory=caps), "cpu", torch)
    assert on_cpu == {"dtype": torch.float32, "trust_remote_code": False}  # no device map, no caps on a CPU
    placed = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": "cpu", "lm_head": "disk"}
    assert offloaded(placed, {"0": "1GiB"}) == ["model.layers.1", "lm_head"]
    assert offloaded(placed, {"0": "1GiB", "cpu": "8GiB"}) == ["lm_head"]  # offload to the CPU asked for
    assert offloaded({"": 0}, None) == []


def test_weights_footprint_and_memory_on_a_cpu(engines) -> None:
    llama, hf = engines
    weights = hf.weights_bytes()
    parameters = sum(p.numel() for p in hf._model.parameters())
    assert weights is not None and weights >= parameters * 4  # float32 on a CPU
    assert hf.info().details["weights_bytes"] == weights and llama.weights_bytes() is None
    usage = memory_usage(hf)
    assert usage["weights_mb"] == round(weights / 2**20, 1)
    assert (usage["gpu"] is None) == (not torch.cuda.is_available())


def test_stats_and_metrics_report_memory_and_gpu_only_where_there_is_one(hf_backend) -> None:
    """The weights' footprint; on a CPU `gpu: null` and no GPU series rather than zeros (tests/gpu covers CUDA)."""
    memory = httpx.get(hf_backend.url + "/stats").json()["memory"]
    assert memory["weights_mb"] > 0 and memory["rss_mb"] > 0
    assert round(metric_total(hf_backend.url, "model_backend_weights_bytes") / 2**20, 1) == memory["weights_mb"]
    has_gpu_series = "model_backend_gpu_memory_allocated_bytes" in httpx.get(hf_backend.url + "/metrics").text
    if torch.cuda.is_available():
        assert memory["gpu"] and has_gpu_series
    else:
        assert memory["gpu"] is None and not has_gpu_series and memory["rss_mb"] > memory["weights_mb"]


@pytest.mark.slow
def test_sized_model_is_an_untrained_half_precision_mistral_both_engines_load(tmp_path: Path) -> None:
    """`make-tiny-models --size small`: ~95 M random parameters in float16 with the tiny tokenizer, and
    an f16 GGUF copy; built in seconds, reused when built, loaded by both engines (the GPU tests' model)."""
    from safetensors import safe_open

    from model_backends.tiny.sized import build_sized_models
    from model_backends.tiny.spec import SIZES, ModelSize, parameter_count

    models = build_sized_models(tmp_path / "small", ModelSize.small)
    manifest = json.loads(models.manifest_path.read_text())
    with safe_open(models.hf_dir / "model.safetensors", "pt") as weights:
        tensors = [weights.get_slice(name) for name in weights.keys()]
        assert {t.get_dtype() for t in tensors} == {"F16"}
        assert sum(math.prod(t.get_shape()) for t in tensors) == manifest["parameters"] == parameter_count(SIZES["small"])
    assert (manifest["size"], manifest["dtype"], manifest["trained"]) == ("small", "float16", False)
    built_at = models.manifest_path.stat().st_mtime_ns
    assert build_sized_models(tmp_path / "small", ModelSize.small).manifest_path.stat().st_mtime_ns == built_at
    params = SamplingParams(max_tokens=8, temperature=0.0, top_p=1.0, ignore_eos=True)
    llama = LlamaCppEngine(str(models.gguf_path), LlamaCppOptions(n_ctx=256), ChatFormat.auto, "small")
    hf = HFTransformersEngine(str(models.hf_dir), TransformersOptions(device="cpu"), ChatFormat.auto, "small")
    for engine in (llama, hf):
        engine.load()
        try:
            assert _run(engine, legal_messages("Что такое кража?"), params)[1:] == (8, "length")
        finally:
            engine.close()


def test_mock_engine_is_refused_unless_allowed() -> None:
    config = BackendConfig(engine="mock")
    from model_backends.host import EngineHost

    with pytest.raises(EngineError, match="allow_mock"):
        load_first_working(EngineHost(config).specs(), ChatFormat.auto, None, allow_mock=False)


@pytest.mark.parametrize(
    ("draw", "expected"),
    [(0.0, FaultKind.error), (0.099, FaultKind.error), (0.1, FaultKind.hang), (0.249, FaultKind.hang),
     (0.25, FaultKind.none), (0.999, FaultKind.none)],
)
def test_fault_choice_by_draw(draw: float, expected: FaultKind) -> None:
    assert choose_fault(draw, error_rate=0.1, hang_rate=0.15) is expected


def test_faults_start_after_the_clean_requests() -> None:
    from model_backends.config import FaultOptions
    from model_backends.faults import FaultInjector

    injector = FaultInjector(FaultOptions(error_rate=1.0, after_requests=2))
    assert [injector.decide().kind for _ in range(4)] == [FaultKind.none, FaultKind.none, FaultKind.error, FaultKind.error]
