"""`model-backend convert` on generated checkpoints, checked against transformers on the same weights.

Two trained models (the tiny one, and a wider one with 4 query heads per KV head and another RoPE
theta) convert at f32 and f16 and answer as transformers does; q8_0 and q4_k_m come from
llama.cpp's own quantizer, shrink as expected and answer the legal API through the loading
cascade; untrained checkpoints cover the shapes the trained ones lack (tied embeddings, attention
biases, head_dim, RoPE scaling, other pre-tokenizers) and a checkpoint large enough to show that
memory does not grow with it. Refusals exit 2 and leave the output folder empty.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
from functools import cache
from pathlib import Path

import gguf
import httpx
import llama_cpp
import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from model_backends.chat_format import ChatFormat
from model_backends.config import LlamaCppOptions, TransformersOptions
from model_backends.convert.outtypes import OutType
from model_backends.convert.pipeline import convert_checkpoint
from model_backends.convert.quantize import quantize
from model_backends.convert.vocab import LLAMA3_REGEX, TEKKEN_REGEX
from model_backends.engines.base import SamplingParams
from model_backends.engines.hf_transformers import HFTransformersEngine
from model_backends.engines.llama_cpp import LlamaCppEngine
from model_backends.errors import ConversionError
from model_backends.prompts import legal_messages
from model_backends.tiny.build import TinyModels, build_tiny_models
from model_backends.tiny.corpus import demo_questions, plain_sentences
from model_backends.tiny.spec import SHAPES, TinySpec
from model_backends.tiny.untrained import save_untrained
from scripts.bench_convert import convert_command, measure

# The first test also builds the wider model when .cache lacks it (about a minute of CPU, longer on busy cores).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GREEDY = SamplingParams(max_tokens=32, temperature=0.0, top_p=1.0)
QUESTIONS = demo_questions()[:6]
CLI = [sys.executable, "-m", "model_backends.cli"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gqa_models() -> TinyModels:
    return build_tiny_models(REPO / ".cache" / "tiny-models-gqa", SHAPES["gqa"])


@pytest.fixture(scope="module")
def models(tiny_models: TinyModels, gqa_models: TinyModels) -> dict[str, TinyModels]:
    return {"tiny": tiny_models, "gqa": gqa_models}


@pytest.fixture(scope="module")
def converted(models: dict[str, TinyModels], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Each model at f32 and f16, and the wider one at q8_0 and q4_k_m; the last through the CLI."""
    out = tmp_path_factory.mktemp("converted")
    files = {}
    for name, built in models.items():
        for outtype in (OutType.f32, OutType.f16, OutType.q8_0):
            if outtype is OutType.q8_0 and name == "tiny":
                continue
            files[name, outtype.value] = convert_checkpoint(built.hf_dir, out / f"{name}-{outtype}.gguf", outtype).output
    cli = subprocess.run([*CLI, "convert", str(models["gqa"].hf_dir), str(out / "gqa-q4_k_m.gguf"),
                          "--outtype", "q4_k_m", "--threads", "2"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "quantizing to q4_k_m" in cli.stderr and "12/12 tensors" in cli.stderr and "q4_k_m" in cli.stderr
    files["gqa", "q4_k_m"] = out / "gqa-q4_k_m.gguf"
    return files


@pytest.fixture(scope="module")
def transformers_answers(models: dict[str, TinyModels]) -> dict[str, list[list[int]]]:
    """The transformers engine's greedy answers, as token ids, for each model."""
    answers = {}
    for name, built in models.items():
        engine = HFTransformersEngine(str(built.hf_dir), TransformersOptions(device="cpu"), ChatFormat.auto, name)
        engine.load()
        answers[name] = [_answer_ids(engine, built, question) for question in QUESTIONS]
        engine.close()
    return answers


def _answer_ids(engine: LlamaCppEngine | HFTransformersEngine, built: TinyModels, question: str) -> list[int]:
    text = "".join(piece.text for piece in engine.stream(engine.prepare(legal_messages(question)), GREEDY,
                                                          threading.Event()))
    return _tokenizer(built.hf_dir)(text, add_special_tokens=False).input_ids


@cache
def _tokenizer(hf_dir: Path):
    return AutoTokenizer.from_pretrained(hf_dir)


def _llama_answers(path: Path, built: TinyModels) -> list[list[int]]:
    engine = LlamaCppEngine(str(path), LlamaCppOptions(n_ctx=1024), ChatFormat.auto, path.stem)
    engine.load()
    try:
        return [_answer_ids(engine, built, question) for question in QUESTIONS]
    finally:
        engine.close()


def token_agreement(reference: list[list[int]], candidate: list[list[int]]) -> float:
    """Share of answer positions holding the same token (a missing token counts as a difference)."""
    same = sum(sum(a == b for a, b in zip(r, c, strict=False)) for r, c in zip(reference, candidate, strict=True))
    return same / sum(max(len(r), len(c)) for r, c in zip(reference, candidate, strict=True))


@pytest.mark.parametrize("name", ["tiny", "gqa"])
def test_f32_answers_token_for_token_as_transformers(name, models, converted, transformers_answers) -> None:
    answers = _llama_answers(converted[name, "f32"], models[name])
    assert answers == transformers_answers[name]
    assert all(answers)


@pytest.mark.parametrize("name", ["tiny", "gqa"])
def test_f16_agrees_on_at_least_95_percent_of_tokens(name, models, converted, transformers_answers) -> None:
    answers = _llama_answers(converted[name, "f16"], models[name])
    assert token_agreement(transformers_answers[name], answers) >= 0.95


def test_quantized_files_shrink_by_the_expected_ratios(converted) -> None:
    """q8_0 is 8.5 bits a weight, q4_k_m a mix of 4.5 (Q4_K) and 6.6 (Q6_K, for output, attn_v and
    ffn_down): against f16, about 0.53 and, for this shape, 0.36 (metadata adds a little)."""
    f16 = converted["gqa", "f16"].stat().st_size
    q8 = converted["gqa", "q8_0"].stat().st_size / f16
    q4 = converted["gqa", "q4_k_m"].stat().st_size / f16
    assert 0.50 <= q8 <= 0.60 and 0.30 <= q4 <= 0.42, (q8, q4)
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(converted["gqa", "q4_k_m"]).tensors}
    q = gguf.GGMLQuantizationType
    assert types["blk.0.attn_q.weight"] == types["blk.0.ffn_up.weight"] == q.Q4_K  # no fallback: rows fit
    assert types["output.weight"] == q.Q6_K and types["output_norm.weight"] == q.F32
    assert {t.tensor_type for t in gguf.GGUFReader(converted["gqa", "q8_0"]).tensors} == {q.Q8_0, q.F32}


def test_q8_0_answers_legal_questions_in_process(models, converted) -> None:
    answers = _llama_answers(converted["gqa", "q8_0"], models["gqa"])
    texts = [_tokenizer(models["gqa"].hf_dir).decode(ids) for ids in answers]
    assert all(any("а" <= ch <= "я" for ch in text.lower()) for text in texts)


def test_cascade_serves_the_converted_gguf_when_transformers_cannot_load(serve, models, converted, tmp_path) -> None:
    """The example cascade: transformers 8-bit then 4-bit on CUDA (refused on this CPU), the q4_k_m GGUF last."""
    settings = yaml.safe_load((REPO / "backend.cascade.example.yaml").read_text())
    settings["model"] = settings["fallbacks"][0]["model"] = str(models["gqa"].hf_dir)
    settings["fallbacks"][-1]["model"] = str(converted["gqa", "q4_k_m"])
    settings["fallbacks"][-1]["llama_cpp"]["n_ctx"] = 1024
    settings.pop("port")
    config = tmp_path / "cascade.yaml"
    config.write_text(yaml.safe_dump(settings))
    backend = serve("cascade", ["--config", str(config)])
    ready = httpx.get(backend.url + "/ready").json()
    assert (ready["engine"], ready["model"]) == ("llama_cpp", "vistral-24b")
    assert [(a["engine"], a["quantization"]) for a in ready["attempts"]] == [
        ("transformers", "8bit"), ("transformers", "4bit"), ("llama_cpp", None)]
    assert all("CUDA" in a["error"] for a in ready["attempts"][:2]) and ready["attempts"][2]["error"] is None
    response = httpx.post(backend.url + "/api/v1/chat/legal",
                          json={"question": "Что такое договор аренды?", "temperature": 0, "max_tokens": 24},
                          timeout=60)
    assert response.status_code == 200
    assert response.json()["engine"] == "llama_cpp" and response.json()["answer"].strip()


# Shapes and RoPE variants the trained models lack, on untrained weights large enough (init 0.2)
# that attention is sharp: a conversion that dropped the RoPE scaling would miss by whole logits.
VARIANTS = {
    "tied embeddings": ("mistral", {"tie_word_embeddings": True}, {}),
    "head_dim above hidden/heads": ("mistral", {}, {"num_heads": 4, "num_kv_heads": 1, "head_dim": 32}),
    "llama with attention biases": ("llama", {"attention_bias": True}, {}),
    "linear RoPE scaling": ("llama", {"rope_parameters": {"rope_type": "linear", "factor": 4.0,
                                                          "rope_theta": 10000.0}}, {}),
    "llama3 RoPE scaling": ("llama", {"rope_parameters": {
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64, "rope_theta": 10000.0}}, {}),
    "yarn RoPE scaling": ("llama", {"rope_parameters": {
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512, "rope_theta": 10000.0}}, {}),
}


def _transformers_logits(hf_dir: Path, ids: list[int]) -> np.ndarray:
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def _llama_logits(gguf_path: Path, ids: list[int]) -> np.ndarray:
    llm = llama_cpp.Llama(str(gguf_path), n_ctx=len(ids) + 8, logits_all=True, n_threads=1, verbose=False)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


def _gap(expected: np.ndarray, got: np.ndarray) -> float:
    """The largest logit difference, relative to the logits' scale."""
    return float(np.abs(got - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_logits_match_transformers(variant, tmp_path) -> None:
    architecture, overrides, shape = VARIANTS[variant]
    hf_dir = save_untrained(tmp_path / "hf", TinySpec(**shape), architecture, {**overrides, "initializer_range": 0.2})
    ids = AutoTokenizer.from_pretrained(hf_dir)("Статья 105 УК РФ говорит об убийстве. " * 12,
                                                add_special_tokens=False).input_ids
    expected = _transformers_logits(hf_dir, ids)
    got = _llama_logits(convert_checkpoint(hf_dir, tmp_path / "model.gguf", OutType.f32).output, ids)
    assert _gap(expected, got) < 0.01 and (got.argmax(-1) == expected.argmax(-1)).mean() >= 0.99
    if "rope_parameters" in overrides:  # the same weights converted without the scaling are far off
        config = json.loads((hf_dir / "config.json").read_text())
        config["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0}
        (hf_dir / "config.json").write_text(json.dumps(config))
        unscaled = _llama_logits(convert_checkpoint(hf_dir, tmp_path / "unscaled.gguf", OutType.f32).output, ids)
        assert _gap(expected, unscaled) > 0.2


@pytest.mark.parametrize("pre, regex", [("llama-bpe", LLAMA3_REGEX), ("tekken", TEKKEN_REGEX)])
def test_split_pre_tokenizers_tokenize_as_transformers(pre, regex, tmp_path) -> None:
    """Llama 3's and Tekken's (Vistral-24B's) pre-tokenizers: llama.cpp splits the corpus identically."""
    hf_dir = save_untrained(tmp_path / "hf", TinySpec(num_layers=1), split_regex=regex)
    convert_checkpoint(hf_dir, tmp_path / "model.gguf", OutType.f32)
    reader = gguf.GGUFReader(tmp_path / "model.gguf")
    assert reader.fields["tokenizer.ggml.pre"].contents() == pre
    hf = AutoTokenizer.from_pretrained(hf_dir)
    llm = llama_cpp.Llama(str(tmp_path / "model.gguf"), vocab_only=True, verbose=False)
    texts = plain_sentences() + ["ГК РФ, ст. 105; 2024 год!\n\n  Иск  подан  в суд's", "<|im_start|>user\nИск?<|im_end|>"]
    differing = [t for t in texts
                 if hf(t, add_special_tokens=False).input_ids != llm.tokenize(t.encode(), add_bos=False, special=True)]
    assert differing == []


def test_conversion_memory_stays_well_under_the_checkpoint(tmp_path) -> None:
    """The larger generated model (untrained, ~280 MB in three shards): converting it to f16 as its own
    process peaks far below its size, since tensors are streamed one at a time."""
    spec = TinySpec(hidden_size=1024, intermediate_size=2816, num_layers=6, num_heads=16, num_kv_heads=4)
    hf_dir = save_untrained(tmp_path / "hf", spec, max_shard_size="100MB")
    size = sum(p.stat().st_size for p in hf_dir.glob("*.safetensors"))
    assert len(list(hf_dir.glob("*.safetensors"))) >= 3
    result = measure(convert_command(hf_dir, tmp_path / "model.gguf", "f16"))
    assert result.returncode == 0, result.output
    assert 0 < result.peak_rss_bytes < size / 2, (result.peak_rss_bytes, size)


# Refusals: each exits 2 with the reason and leaves the output folder as it found it (empty).

def _refused(hf_dir: Path, out: Path, *extra: str, preexec=None) -> str:
    result = subprocess.run([*CLI, "convert", str(hf_dir), str(out), *extra], capture_output=True, text=True,
                            preexec_fn=preexec)
    assert result.returncode == 2, result.stderr
    return " ".join(result.stderr.split())


@pytest.fixture
def checkpoint_copy(tiny_models: TinyModels, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_models.hf_dir, tmp_path / "hf"))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_unknown_architecture_is_refused(checkpoint_copy, out_dir) -> None:
    config = json.loads((checkpoint_copy / "config.json").read_text())
    config.update(architectures=["GPT2LMHeadModel"], model_type="gpt2")
    (checkpoint_copy / "config.json").write_text(json.dumps(config))
    message = _refused(checkpoint_copy, out_dir / "model.gguf")
    assert "unsupported architecture GPT2LMHeadModel" in message
    assert list(out_dir.iterdir()) == []


def test_missing_or_unsupported_tokenizer_is_refused(checkpoint_copy, out_dir) -> None:
    tokenizer = json.loads((checkpoint_copy / "tokenizer.json").read_text())
    tokenizer["model"]["byte_fallback"] = True  # SentencePiece-style BPE
    (checkpoint_copy / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert "unsupported tokenizer: SentencePiece-style" in _refused(checkpoint_copy, out_dir / "model.gguf")
    (checkpoint_copy / "tokenizer.json").unlink()
    assert "has no tokenizer.json" in _refused(checkpoint_copy, out_dir / "model.gguf")
    assert list(out_dir.iterdir()) == []


def test_unwritable_output_is_refused(tiny_models, out_dir) -> None:
    blocker = out_dir / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    assert "does not exist" in _refused(tiny_models.hf_dir, blocker / "model.gguf")
    existing = out_dir / "model.gguf"
    existing.write_bytes(b"an older model")
    assert "exists; pass --force" in _refused(tiny_models.hf_dir, existing)
    assert existing.read_bytes() == b"an older model"
    if os.geteuid() != 0:  # root writes anywhere
        out_dir.chmod(0o555)
        try:
            assert "cannot write in" in _refused(tiny_models.hf_dir, out_dir / "other.gguf")
        finally:
            out_dir.chmod(0o755)
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.gguf", "not-a-folder"]


def test_a_quantizer_failure_says_why(tmp_path) -> None:
    garbage = tmp_path / "bad.gguf"
    garbage.write_bytes(b"not a gguf file")
    with pytest.raises(ConversionError, match="could not quantize to q4_k_m: .*invalid magic"):
        quantize(garbage, tmp_path / "out.gguf", OutType.q4_k_m, 1, lambda name, total: None)


def test_a_disk_that_fills_mid_write_leaves_nothing_behind(tiny_models, out_dir) -> None:
    """Files may grow to 256 KiB only (RLIMIT_FSIZE): the write fails part-way through the tensors."""
    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    message = _refused(tiny_models.hf_dir, out_dir / "model.gguf", "--outtype", "f32", preexec=small_disk)
    assert "cannot write" in message and ("File too large" in message or "disk full" in message)
    assert list(out_dir.iterdir()) == []
